"""Request shapes chosen for speed, each on a ladder that ends in a shape that always works.

A real tenant may refuse a shape that Graph documents (or that most tenants accept): ``ge`` on
userPrincipalName, advanced queries, ``$deltatoken=latest``, ``$batch``, Graph's list route. A refusal is an
HTTP 400 or 501 (``Request_UnsupportedQuery``, ``BadRequest``, ``NotImplemented``...) on a request that
is otherwise right; it is not retried. The account drops to the next rung of that ladder, says so once (a
WARNING naming the refused shape and the one now used), and the store remembers it for a day, so a restart
starts on the rung that worked and probes the faster one again only the next day. Another account keeps its
own rungs. When the last rung is refused too, ``NoFallbackError`` says what to change.

::

    ladder      rungs, fastest first                                   used by
    directory   startswith > ranges > advanced > paging > delta        graph/directory.read_all_users
    cursor      deltatoken-latest > delta-round                       graph/directory.open_cursor
    batch       batch > single                                         lookups, Graph list-route writes
    list        list-route > sharepoint-rest                          the Agent list of app-only accounts
    rest-batch  rest-batch > rest-single                              SharePoint REST writes (delegated)

Graph documentation relied on: "Advanced query capabilities on Microsoft Entra ID objects" (startsWith and
``le`` on userPrincipalName by default, ``ge`` left blank; ``ConsistencyLevel: eventual`` with ``$count=true``
for the rest), "user: delta" (``$deltatoken=latest``), "Combine multiple HTTP requests using JSON batching".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ..errors import NoFallbackError, PermanentGraphError
from ..store.shapes import Refusal

__all__ = ["LADDERS", "REMEMBER", "Ladder", "ShapeBook", "ShapeMemory", "is_refusal"]

log = logging.getLogger(__name__)

REMEMBER = timedelta(days=1)  # a refused shape is tried again after this long
REFUSAL_STATUS = (400, 501)


@dataclass(frozen=True)
class Ladder:
    name: str
    what: str  # the request, as a log line names it
    rungs: tuple[tuple[str, str], ...]  # (shape, how a log line names it), fastest first; the last always works
    fix: str  # what to do when even the last rung is refused ({account} is filled in)

    @property
    def shapes(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.rungs)

    def title(self, shape: str) -> str:
        return dict(self.rungs).get(shape, shape)


_DOCTOR = "run `presence-sync doctor --account {account}` to see which request shapes the tenant accepts"
LADDERS: dict[str, Ladder] = {ladder.name: ladder for ladder in (
    Ladder("directory", "the directory read", (
        ("startswith", "UPN partitions by startsWith"),
        ("ranges", "UPN ranges (ge/le)"),
        ("advanced", "UPN ranges as advanced queries (ConsistencyLevel: eventual, $count=true)"),
        ("paging", "one /users read, page after page"),
        ("delta", "a full /users/delta round")),
        "Graph refused every way of reading the directory: check that the app has User.Read.All (application) "
        "or User.ReadBasic.All (delegated) and that no proxy rewrites Graph requests; " + _DOCTOR),
    Ladder("cursor", "the directory change cursor", (
        ("deltatoken-latest", "a delta cursor from $deltatoken=latest"),
        ("delta-round", "a full /users/delta round beside the read")),
        "Graph refused /users/delta: the directory cannot be kept current; check User.Read.All or "
        "Directory.Read.All on the app; " + _DOCTOR),
    Ladder("batch", "Graph requests in bulk", (
        ("batch", "$batch of 20 requests"),
        ("single", "one request per call")),
        "Graph refused single requests too; " + _DOCTOR),
    Ladder("list", "the Agent list", (
        ("list-route", "Graph's list route (/sites/.../lists)"),
        ("sharepoint-rest", "SharePoint REST (/_api/web/lists)")),
        "the tenant refuses Graph's list route for this site, and SharePoint REST refuses app-only tokens made "
        "from a client secret: give account {account} a delegated login (Username + EncryptedPassword, or a "
        "device login) or read the roster from a file with --roster FILE.csv"),
    Ladder("rest-batch", "SharePoint REST writes", (
        ("rest-batch", "SharePoint REST $batch of 100 updates"),
        ("rest-single", "one SharePoint REST update per item")),
        "SharePoint refused single item updates too: check the service account's edit rights on the list; "
        + _DOCTOR),
)}


class ShapeMemory(Protocol):
    """Where refusals outlive the process (the store)."""

    def load_refusals(self, account_id: str) -> list[Refusal]: ...
    def save_refusal(self, account_id: str, refusal: Refusal) -> None: ...
    def forget_refusals(self, account_id: str, ladder: str | None = None) -> None: ...


def is_refusal(exc: BaseException) -> bool:
    """Whether an error says "not this shape" (400/501 on a well-formed request), not "not now" or "not you"."""
    return (isinstance(exc, PermanentGraphError) and not isinstance(exc, NoFallbackError)
            and exc.status in REFUSAL_STATUS and "syncstate" not in (exc.code or "").lower())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PermanentGraphError):
        text = f"HTTP {exc.status} {exc.code or ''}".strip()
        detail = exc.message.rsplit(": ", 1)[-1] if ": " in exc.message else ""
        return f"{text}: {detail}"[:300] if detail and detail != exc.code else text
    return str(exc)[:300]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


class ShapeBook:
    """One account's place on every ladder: the fastest shape the tenant has not refused within a day."""

    def __init__(self, account_id: str, memory: ShapeMemory | None = None, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), remember: timedelta = REMEMBER) -> None:
        self.account_id = account_id
        self.memory = memory
        self.clock = clock
        self.remember = remember
        self._refused: dict[str, dict[str, Refusal]] = {}
        if memory is not None:
            self._load(memory)

    def _load(self, memory: ShapeMemory) -> None:
        now = self.clock()
        stale = False
        for r in memory.load_refusals(self.account_id):
            if r.ladder not in LADDERS or r.shape not in LADDERS[r.ladder].shapes:
                continue
            if now - r.refused_at >= self.remember:
                stale = True
                continue
            self._refused.setdefault(r.ladder, {})[r.shape] = r
        if stale:
            memory.forget_refusals(self.account_id)
            for refusals in self._refused.values():
                for r in refusals.values():
                    memory.save_refusal(self.account_id, r)
        for name, refusals in self._refused.items():
            ladder = LADDERS[name]
            until = min(r.refused_at for r in refusals.values()) + self.remember
            log.info("account %s: %s uses %s: the tenant refused %s (remembered until %s)", self.account_id,
                     ladder.what, ladder.title(self.current(name)),
                     ", ".join(ladder.title(s) for s in refusals), until.strftime("%Y-%m-%d %H:%M UTC"))

    def current(self, ladder: str) -> str:
        """The shape to use now: the fastest one not refused (the last rung when all are)."""
        lad = LADDERS[ladder]
        refused = self._refused.get(ladder, {})
        return next((s for s in lad.shapes if s not in refused), lad.shapes[-1])

    def refused(self, ladder: str) -> Mapping[str, Refusal]:
        return dict(self._refused.get(ladder, {}))

    def state(self) -> dict[str, str]:
        """Every ladder's shape in use (for doctor, metrics and the log)."""
        return {name: self.current(name) for name in LADDERS}

    def exhausted(self, ladder: str) -> bool:
        return all(s in self._refused.get(ladder, {}) for s in LADDERS[ladder].shapes)

    def refuse(self, ladder: str, shape: str, exc: BaseException) -> str:
        """Note that the tenant refused ``shape`` (once per shape, however many requests saw it) and return the
        shape to use next; NoFallbackError when none is left."""
        lad = LADDERS[ladder]
        refusals = self._refused.setdefault(ladder, {})
        if shape not in refusals:
            refusal = Refusal(ladder, shape, self.clock(), _reason(exc))
            refusals[shape] = refusal
            if self.memory is not None:
                self.memory.save_refusal(self.account_id, refusal)
            if not self.exhausted(ladder):
                until = (refusal.refused_at + self.remember).strftime("%Y-%m-%d %H:%M UTC")
                log.warning("account %s: the tenant refused %s for %s (%s); using %s instead (remembered until "
                            "%s)", self.account_id, lad.title(shape), lad.what, refusal.reason,
                            lad.title(self.current(ladder)), until)
        if self.exhausted(ladder):
            raise NoFallbackError(
                f"the tenant refused every shape of {lad.what} "
                f"({'; '.join(f'{lad.title(s)}: {r.reason}' for s, r in refusals.items())})",
                status=getattr(exc, "status", 0) or 0, code=getattr(exc, "code", None),
                hint=_sentence(lad.fix.format(account=self.account_id)))
        return self.current(ladder)
