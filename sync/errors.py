"""The exception tree of presence-sync, and the exit codes the CLI maps it to.

::

    SyncError                       anything presence-sync raises on purpose        exit 1
    ├── ConfigError                 config.xml / .env / environment / flags wrong    exit 2
    │                               (carries every ConfigProblem at once)
    ├── UsageError                  a command was called wrongly                     exit 2
    ├── SecretError                 a value or key file cannot be used for           exit 2
    │                               encryption/decryption (kind says why)
    ├── AuthError                   no token for an account
    │   ├── NeedsHumanError         login, consent, expired secret, MFA             exit 3
    │   └── TransientAuthError      the token endpoint failed for now (retried)      exit 1
    ├── GraphError                  Microsoft Graph / SharePoint said no
    │   ├── TransientGraphError     429, 5xx, timeouts, resets (retried)             exit 1
    │   └── PermanentGraphError     4xx that a retry will not fix                    exit 1
    │       └── NoFallbackError     every request shape of a ladder was refused      exit 1
    ├── RosterError                 the Agent list cannot be read or parsed          exit 1
    └── StoreError                  the store or the state directory failed          exit 1
        └── LeaseLost               a write for an account another replica took over exit 1

    TransientError (mixin)          marks TransientAuthError and TransientGraphError, so one
                                    predicate (``isinstance(exc, TransientError)``) drives the retries.

Exit codes (``presence-sync`` returns them): ``EXIT_OK`` 0 all accounts ok; ``EXIT_PARTIAL`` 1 an account or a chunk
failed (the others ran); ``EXIT_USAGE`` 2 configuration or usage error; ``EXIT_NEEDS_HUMAN`` 3 an account needs a
human (login, consent, expired secret, MFA). Foreign exceptions are translated once, at the adapter, chained with
``raise ... from exc``. Messages say what happened, where, and what to do; they never hold a secret or token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "EXIT_NEEDS_HUMAN",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "AuthError",
    "ConfigError",
    "ConfigProblem",
    "GraphError",
    "LeaseLost",
    "NeedsHumanError",
    "NoFallbackError",
    "PermanentGraphError",
    "RosterError",
    "SecretError",
    "StoreError",
    "SyncError",
    "TransientAuthError",
    "TransientError",
    "TransientGraphError",
    "UsageError",
]

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_NEEDS_HUMAN = 3


class SyncError(Exception):
    """Base of every error presence-sync raises on purpose; ``exit_code`` is what the CLI returns."""

    exit_code: ClassVar[int] = EXIT_PARTIAL

    def __init__(self, message: str, *, account_id: str | None = None, hint: str = "") -> None:
        self.message = message
        self.account_id = account_id
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        where = f"account '{self.account_id}': " if self.account_id else ""
        return f"{where}{self.message}" + (f" {self.hint}" if self.hint else "")


class TransientError:
    """Mixin: a retry with backoff may succeed. The one retry predicate tests for this class."""


# --- configuration and usage -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong (or suspicious, ``severity="warning"``) in the configuration, with where and how to fix it."""

    file: str
    line: int | None
    attribute: str
    message: str
    hint: str = ""
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        attr = f" {self.attribute}:" if self.attribute else ""
        text = f"{where}:{attr} {self.message}"
        if self.hint:
            text += f" {self.hint}"
        return text


class ConfigError(SyncError):
    """The configuration cannot be used; ``problems`` lists every error found, not just the first."""

    exit_code: ClassVar[int] = EXIT_USAGE

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid configuration")

    def __str__(self) -> str:
        return self.message


class UsageError(SyncError):
    """A command was called with options that do not fit together."""

    exit_code: ClassVar[int] = EXIT_USAGE


class SecretError(SyncError):
    """A key file or an encrypted value cannot be used.

    ``kind`` is one of ``"not_encrypted"`` (the value is not a presence-sync token), ``"wrong_key"`` (made with
    another key), ``"corrupted"`` (damaged or tampered with), ``"no_key"`` (no key file), ``"bad_key"`` (the key file
    is unreadable, malformed or unsafe).
    """

    exit_code: ClassVar[int] = EXIT_USAGE

    def __init__(self, message: str, *, kind: str, hint: str = "") -> None:
        self.kind = kind
        super().__init__(message, hint=hint)


# --- authentication ----------------------------------------------------------------------------------------------


class AuthError(SyncError):
    """No usable token for an account."""


class NeedsHumanError(AuthError):
    """Only a person can fix this: device login, admin consent, a new client secret, an MFA exclusion."""

    exit_code: ClassVar[int] = EXIT_NEEDS_HUMAN


class TransientAuthError(TransientError, AuthError):
    """The token endpoint failed in a way a later attempt may not (5xx, timeout, reset)."""


# --- Graph and SharePoint ----------------------------------------------------------------------------------------


class GraphError(SyncError):
    """Microsoft Graph or SharePoint refused or failed a request; ``request_id`` is Graph's ``request-id``."""

    def __init__(
        self,
        message: str,
        *,
        account_id: str | None = None,
        hint: str = "",
        request_id: str | None = None,
    ) -> None:
        self.request_id = request_id
        super().__init__(message, account_id=account_id, hint=hint)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (request-id {self.request_id})" if self.request_id else text


class TransientGraphError(TransientError, GraphError):
    """429, 5xx, timeouts, resets: retry, after ``retry_after`` seconds when the server said so."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        account_id: str | None = None,
        hint: str = "",
        request_id: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.status = status
        super().__init__(message, account_id=account_id, hint=hint, request_id=request_id)


class PermanentGraphError(GraphError):
    """A 4xx that a retry will not fix; ``code`` is Graph's ``error.code`` (e.g. ``Request_ResourceNotFound``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        account_id: str | None = None,
        hint: str = "",
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        super().__init__(message, account_id=account_id, hint=hint, request_id=request_id)


class NoFallbackError(PermanentGraphError):
    """The tenant refused every shape of an optimised request down to the one that always works: nothing is
    left to try until the tenant or the configuration changes (the hint says what to change)."""


# --- local data --------------------------------------------------------------------------------------------------


class RosterError(SyncError):
    """The Agent list (SharePoint list or roster CSV) cannot be read or lacks the UPN column."""


class StoreError(SyncError):
    """The store (SQLite in the state directory, or PostgreSQL) or the state directory cannot be used."""


class LeaseLost(StoreError):
    """A write for an account this replica no longer holds (its lease passed to another replica): refused, so a
    paused or partitioned replica cannot write after the new holder started."""
