"""Incidents that need a human, each alerted once when it opens and once when it is resolved.

The book of open incidents lives in ``<state dir>/alerts.json`` (written atomically, 0600), so a restart neither
repeats an alert already sent nor forgets to say when the trouble is over::

    {"version": 1, "open": {"<account>": {"<kind>": {"since": "2026-11-30T05:01:02Z", "message": "..."}}}}
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .redact import redact

__all__ = ["KINDS", "Alert", "IncidentBook", "classify"]

log = logging.getLogger(__name__)

# kind -> (title, what to do; {account} is filled in)
KINDS: dict[str, tuple[str, str]] = {
    "login_needed": ("login needed", "Log the account in: run `presence-sync login --account {account}`, or open "
                     "the address in the job's log and enter the code shown there."),
    "consent_missing": ("consent missing", "An administrator must grant admin consent on the app registration's "
                        "API permissions page."),
    "secret_invalid": ("wrong or expired secret", "Create a new client secret (or set the right password), "
                       "encrypt its value with `presence-sync encrypt-secret` and put it in the account's "
                       "EncryptedSecret (EncryptedPassword)."),
    "secret_expiring": ("client secret expiring", "Create a new client secret before then, encrypt it with "
                        "`presence-sync encrypt-secret`, and update EncryptedSecret and ClientSecretExpires."),
    "account_failing": ("account failing", "Check the job's log for this account's errors; the message says "
                        "what failed last."),
    "needs_human": ("needs a human", "Read the message: it says what to fix."),
}
HUMAN_KINDS = frozenset(KINDS) - {"account_failing"}

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("needs_human", re.compile(r"AADSTS(50076|7000218|700016|90002|50034)\b")),  # MFA, app or tenant wrong
    ("secret_invalid", re.compile(r"AADSTS(7000215|7000222|50126)\b|invalid_client", re.I)),
    ("consent_missing", re.compile(r"AADSTS65001\b|consent_required|consent", re.I)),
    ("login_needed", re.compile(r"AADSTS(700082|70008|50173|50078)\b|login_required|invalid_grant|log in|login",
                                re.I)),
)


def classify(message: str) -> str:
    """The incident kind of a needs-a-human error message (AADSTS code first, then words)."""
    for kind, pattern in _RULES:
        if pattern.search(message):
            return kind
    return "needs_human"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Alert:
    """One message to send: an incident opened or resolved."""

    account: str
    kind: str
    state: str  # "open" | "resolved"
    message: str
    action: str
    since: str  # when the incident opened (ISO 8601, UTC)
    at: str  # when this alert was raised

    @property
    def text(self) -> str:
        title = KINDS.get(self.kind, KINDS["needs_human"])[0]
        if self.state == "resolved":
            return f"presence-sync: account {self.account}: resolved: {title} (since {self.since})."
        return f"presence-sync: account {self.account}: {title}: {self.message} What to do: {self.action}"

    def body(self) -> dict[str, str]:
        """The JSON sent to the webhook and to the command; ``text`` is what a Teams incoming webhook shows."""
        return {"text": self.text, "account": self.account, "kind": self.kind, "state": self.state,
                "message": self.message, "action": self.action, "since": self.since, "at": self.at}


class IncidentBook:
    """Which incidents are open, per account and kind; opening or resolving one returns the alert to send."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, dict[str, dict[str, str]]] = self._load()

    def _load(self) -> dict[str, dict[str, dict[str, str]]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            opened = data["open"]
            return {str(a): {str(k): {"since": str(v["since"]), "message": str(v.get("message", ""))}
                             for k, v in kinds.items()} for a, kinds in opened.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s cannot be read (%s); alerts for incidents still open may be sent again",
                        self.path, type(exc).__name__)
            return {}

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "open": self._open}, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot record the open incidents in %s: %s", self.path, exc.strerror or exc)

    def open_kinds(self, account: str) -> dict[str, dict[str, str]]:
        with self._lock:
            return {k: dict(v) for k, v in self._open.get(account, {}).items()}

    def open(self, account: str, kind: str, message: str, action: str = "") -> list[Alert]:
        """Open ``kind`` for ``account``: one alert the first time, none while it stays open."""
        message = redact(message)
        action = redact(action or KINDS.get(kind, KINDS["needs_human"])[1].format(account=account))
        with self._lock:
            kinds = self._open.setdefault(account, {})
            if kind in kinds:
                return []
            now = _iso(self._clock())
            kinds[kind] = {"since": now, "message": message}
            self._save()
        return [Alert(account, kind, "open", message, action, now, now)]

    def resolve(self, account: str, kinds: Iterable[str] | None = None, keep: Iterable[str] = ()) -> list[Alert]:
        """Close the open incidents of ``account`` (only ``kinds`` when given, never ``keep``): one alert each."""
        with self._lock:
            current = self._open.get(account, {})
            names = [k for k in (current if kinds is None else kinds) if k in current and k not in set(keep)]
            if not names:
                return []
            now = _iso(self._clock())
            out = []
            for k in names:
                rec = current.pop(k)
                out.append(Alert(account, k, "resolved", rec["message"], "", rec["since"], now))
            if not current:
                self._open.pop(account, None)
            self._save()
        return out
