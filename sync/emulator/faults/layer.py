"""Fault injection: an ASGI middleware in front of Graph and SharePoint that misbehaves on request.

Switches (``FaultConfig``, live in ``state.faults``, set by ``POST /_emulator/faults`` or CLI flags):
latency (a model from latency.py: one spec for all, or ``presence=150:400,other=80``), ``error_rate``
(500/502/503/504, 503 with Retry-After), ``burst_429`` (the next N matching requests get 429 with a
fractional Retry-After), ``reset_rate`` (headers with a Content-Length, half the body, then the
connection drops), ``truncate_rate`` (the JSON body cut in half, consistent Content-Length),
``malformed_rate`` (200 with invalid JSON), ``revoke_tokens`` (revoke every token once),
``revoke_every`` (seconds between revocations), ``batch_item_429_rate`` and ``batch_item_retry_after``
(Graph ``$batch`` items answered 429 inside the 200 envelope, see graph/batch.py), ``throttle_for`` and
``throttle_retry_after`` (for that many seconds every matching request is answered 429 with that
Retry-After), ``paths`` (path prefixes, default ``/v1.0`` and ``/sites``; ``/_emulator`` never) and
``seed`` (one random stream, so a run can be repeated) and ``refuse`` (request shapes answered as a tenant
that does not support them answers, whatever ``paths`` says: see refuse.py).

A path prefix may name one tenant's site (``/sites/contoso-cc``): it then matches that site's
SharePoint REST calls, the Graph calls that address the site (``/v1.0/sites/{site-id}/...``) or its
drive (``/v1.0/drives/{drive-id}/...``), and token revocation touches only that tenant's tokens.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..identity.tokens import TokenInfo
from ..model.pause import RetryAfterHold
from ..responses import graph_error_body, sp_error
from ..state import EmulatorState
from .latency import LatencyModel, kind_of, parse_model, parse_spec
from .refuse import parse_refuse

__all__ = ["FaultConfig", "parse_latency", "wrap"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_PATHS = ("/v1.0", "/sites")
BUSY_RETRY_AFTER = 1  # seconds: the Retry-After of an injected 503
_5XX = {
    500: ("generalException", "General exception while processing."),
    502: ("BadGateway", "The server, while acting as a gateway or proxy, received an invalid response."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response from the upstream server."),
}


def parse_latency(spec: str | None) -> tuple[str, float, float] | None:
    """One spec (``fixed:MS`` | ``uniform:MIN,MAX`` | ``exp:MEAN`` | ``MS`` | ``P50:P99``) -> (kind, a, b); None/"none" -> None."""
    if spec is None or spec.strip().lower() in ("", "none", "off", "0"):
        return None
    parsed = parse_spec(spec)
    return (parsed.kind, parsed.a, parsed.b)


@dataclass
class FaultConfig:
    latency: str | None = None
    error_rate: float = 0.0
    burst_429: int = 0  # answer the next N matching requests with 429
    burst_retry_after: float = 1.5  # seconds, sent with a fractional part
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    malformed_rate: float = 0.0
    revoke_tokens: bool = False  # revoke every token on the next matching request, once
    revoke_every: float | None = None  # seconds between token revocations (None: never)
    batch_item_429_rate: float = 0.0  # that share of Graph $batch items answered 429 without running them
    batch_item_retry_after: float = 0.5  # seconds; each 429 item gets 80-100% of it, fractional
    throttle_for: float = 0.0  # seconds from now during which every matching request gets 429 (0: off)
    throttle_retry_after: float = 5.0  # seconds, the Retry-After of those 429s
    paths: list[str] = field(default_factory=lambda: list(DEFAULT_PATHS))
    seed: int | None = None
    refuse: list[str] = field(default_factory=list)  # request shapes answered as a refusing tenant does (refuse.py)
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _latency: LatencyModel | None = field(init=False, repr=False, compare=False)
    _last_revoke: float = field(init=False, repr=False, compare=False, default=0.0)
    # (bucket, app, tenant) -> the Retry-After its injected 429s handed out
    _not_before: dict[tuple[str, str, str], RetryAfterHold] = field(init=False, repr=False, compare=False)
    _item_not_before: dict[str, RetryAfterHold] = field(init=False, repr=False, compare=False)
    _throttle_until: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        self.validate()
        self._rng = random.Random(self.seed)
        self._not_before = {}
        self._item_not_before = {}
        self._last_revoke = time.monotonic()
        self._throttle_until = self._last_revoke + float(self.throttle_for)

    def validate(self) -> None:
        self._latency = parse_model(self.latency)
        for name in ("error_rate", "reset_rate", "truncate_rate", "malformed_rate", "batch_item_429_rate"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.burst_429 < 0 or self.burst_retry_after < 0:
            raise ValueError("burst_429 and its Retry-After must not be negative")
        if self.batch_item_retry_after < 0:
            raise ValueError("batch_item_retry_after must not be negative")
        if self.throttle_for < 0 or self.throttle_retry_after < 0:
            raise ValueError("throttle_for and throttle_retry_after must not be negative")
        if self.revoke_every is not None and self.revoke_every <= 0:
            raise ValueError("revoke_every must be positive seconds")
        if isinstance(self.paths, str):
            self.paths = [p for p in self.paths.split(",") if p]
        self.refuse = parse_refuse(self.refuse)

    @classmethod
    def public_fields(cls) -> list[str]:
        return [f.name for f in fields(cls) if not f.name.startswith("_")]

    def to_json(self) -> dict[str, Any]:
        """The switches, plus the parsed latency model (read-only) so a caller sees what it asked for."""
        d = asdict(self)
        out = {k: d[k] for k in self.public_fields()}
        out["latency_model"] = self._latency.to_json() if self._latency is not None else None
        out["throttle_remaining"] = round(self.throttle_remaining(), 3)
        return out

    def merged(self, changes: dict[str, Any]) -> FaultConfig:
        """A new config: this one with ``changes`` applied (ValueError on unknown names or bad values)."""
        read_only = ("latency_model", "throttle_remaining")  # echoed by GET
        changes = {k: v for k, v in changes.items() if k not in read_only}
        unknown = set(changes) - set(self.public_fields())
        if unknown:
            raise ValueError(f"unknown fault switch(es): {', '.join(sorted(unknown))}")
        values = {k: getattr(self, k) for k in self.public_fields()}
        values.update(changes)
        try:
            new = FaultConfig(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        if "throttle_for" not in changes:  # other switches changed: the running window keeps its end
            new._throttle_until = self._throttle_until
        return new

    def applies(self, path: str, *aliases: str) -> bool:
        """Whether the faults act on ``path`` (or on one of its ``aliases``, e.g. the site a Graph path names)."""
        if path.startswith("/_emulator"):
            return False
        if any(path.startswith(p) for p in self.paths):
            return True
        # an alias (a site's REST path) matches only prefixes that name a site: "/sites" alone stays REST only
        return any(a.startswith(p) for a in aliases for p in self.paths if p.rstrip("/").count("/") >= 2)

    def throttle_remaining(self) -> float:
        return max(0.0, self._throttle_until - time.monotonic())

    def delay(self, path: str = "") -> float:
        """Seconds to wait for a request to ``path`` (its kind picks the spec), never more than the spec allows."""
        if self._latency is None:
            return 0.0
        spec = self._latency.spec_for(kind_of(path))
        return spec.draw_ms(self._rng) / 1000.0 if spec is not None else 0.0

    def hit(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def batch_item(self, key: str, arrived: float | None = None) -> tuple[tuple[float, float, float] | None, float | None]:
        """For one Graph $batch item (``key`` names the request and its caller) whose batch came in at
        ``arrived``: (a violation's (arrived, 429 sent, Retry-After ended) when it came back early, else None;
        the Retry-After of an injected 429 or None to run it). A running ``throttle_for`` window answers every
        item 429."""
        now = time.monotonic()
        held = self._item_not_before.get(key)
        early = held.early(now if arrived is None else arrived) if held is not None else None
        if self.throttle_remaining() > 0:
            wait = self.throttle_retry_after
        elif self.hit(self.batch_item_429_rate):
            wait = math.ceil(self.batch_item_retry_after * (0.8 + 0.2 * self._rng.random()) * 1000) / 1000
        else:
            return early, None
        if len(self._item_not_before) > 50_000:  # forget what has expired, so the map stays small
            self._item_not_before = {k: h for k, h in self._item_not_before.items() if h.not_before > now}
        self._item_not_before.setdefault(key, RetryAfterHold()).hold(now, now + wait)
        return early, wait


def site_aliases(state: EmulatorState, path: str) -> tuple[str, ...]:
    """The REST path of the site a Graph ``/v1.0/sites/{site}`` or ``/v1.0/drives/{drive-id}`` path addresses
    (``{site}`` as its id, one of the id's GUIDs, or ``hostname:/sites/name:``), if any."""
    low = path.lower()
    if not (low.startswith("/v1.0/sites/") or low.startswith("/v1.0/drives/")):
        return ()
    for tenant in state.world.tenants.values():
        site = tenant.site
        keys = [f"/v1.0/drives/{site.drive_id}".lower()]
        if low.startswith("/v1.0/sites/"):
            keys += [f"/v1.0/sites/{k}".lower() for k in (site.id, *site.id.split(",")[1:])]
            keys.append(f"/v1.0/sites/{site.hostname}:{site.path}:".lower())
        for k in keys:
            if low == k or low.startswith(k + "/"):
                return (site.path + path[len(k):],)
    return ()


def scoped_tenants(state: EmulatorState, cfg: FaultConfig) -> list[str] | None:
    """The tenants whose sites ``paths`` name, when every path names a site; None: the faults are global."""
    ids: list[str] = []
    for p in cfg.paths:
        hit = [t.tenant_id for t in state.world.tenants.values()
               if p.rstrip("/") and (t.site.path.startswith(p.rstrip("/") + "/") or t.site.path == p.rstrip("/"))
               and p.rstrip("/").count("/") >= 2]
        if not hit:
            return None
        ids += hit
    return ids


def revoke(state: EmulatorState, cfg: FaultConfig) -> int:
    """Revoke every token, or only those of the tenants whose sites the fault paths name."""
    tenants = scoped_tenants(state, cfg)
    state.stats.faults_injected["revoke_tokens"] += 1
    if tenants is None:
        return state.tokens.revoke()
    return sum(state.tokens.revoke(tid) for tid in tenants)


def _bucket(path: str) -> str:
    p = path.lower()
    if "/_api/" in p or p.endswith("/_api") or p.startswith("/v1.0/sites/"):
        return "sharepoint"
    if "presence" in p:
        return "presence"
    if p.endswith("/$batch"):
        return "batch"  # a JSON batch may carry any service's requests: its 429s bind later batches only
    return "directory"


async def _send_json(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _accept(scope: Scope) -> str:
    return next((v.decode().lower() for k, v in scope.get("headers", []) if k.lower() == b"accept"), "")


def _error_body(path: str, status: int, code: str, message: str, accept: str = "") -> bytes:
    if "/_api" in path:  # SharePoint answers in the OData flavour asked for: verbose unless light JSON was asked
        light = "odata=nometadata" in accept or "odata=minimalmetadata" in accept
        return bytes(sp_error(status, code, message, verbose=not light).body)
    body = graph_error_body(code, message)
    if status == 429:
        body["error"]["innerError"].update({"code": "429", "message": "Please retry after", "status": "429"})
    return json.dumps(body, separators=(",", ":")).encode()


class FaultMiddleware:
    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # every budget judges Retry-After by when a request came in, not when served
            scope.setdefault("arrived_at", time.monotonic())
        cfg = self.state.faults
        if scope["type"] != "http" or not isinstance(cfg, FaultConfig) or not cfg.applies(
                scope["path"], *site_aliases(self.state, scope["path"])):
            await self.app(scope, receive, send)
            return
        stats = self.state.stats
        self._revoke(cfg)
        # One draw per switch, always in this order, so a seed reproduces the same run.
        wait = cfg.delay(scope["path"])
        error, reset, truncate, malformed = (cfg.hit(cfg.error_rate), cfg.hit(cfg.reset_rate),
                                             cfg.hit(cfg.truncate_rate), cfg.hit(cfg.malformed_rate))
        if wait > 0:
            stats.faults_injected["latency"] += 1
            await asyncio.sleep(wait)
        path = scope["path"]
        if cfg.throttle_remaining() > 0:
            await self._throttle(cfg, scope, send, cfg.throttle_retry_after, "throttle_for")
            return
        if cfg.burst_429 > 0:
            cfg.burst_429 -= 1
            await self._throttle(cfg, scope, send, cfg.burst_retry_after, "burst_429")
            return
        if error:
            status = cfg._rng.choice(sorted(_5XX))
            stats.faults_injected[f"error_{status}"] += 1
            if status == 503 and _bucket(path) == "presence" and (info := self._caller(scope)) is not None:
                self.state.presence_reads.pause(info.tenant_id, BUSY_RETRY_AFTER)  # no read until it ends
            await _send_json(send, status, _error_body(path, status, *_5XX[status], _accept(scope)),
                             {"Retry-After": str(BUSY_RETRY_AFTER)} if status == 503 else {})
            return
        if malformed:
            stats.faults_injected["malformed"] += 1
            await _send_json(send, 200, b'{"value":[{"id":"<html><body>Service Unavailable</body>', {})
            return
        if reset or truncate:
            await self._mangle(scope, receive, send, "reset" if reset else "truncate")
            return
        await self.app(scope, receive, send)

    def _revoke(self, cfg: FaultConfig) -> None:
        now = time.monotonic()
        due = cfg.revoke_every is not None and now - cfg._last_revoke >= cfg.revoke_every
        if cfg.revoke_tokens or due:
            cfg.revoke_tokens = False
            cfg._last_revoke = now
            revoke(self.state, cfg)

    def _caller(self, scope: Scope) -> TokenInfo | None:
        """Whose request this is, from its bearer token (also a revoked one: a 429 binds its caller whatever the
        state of its token), or None when it carries no token the tenant issued."""
        auth = next((v.decode() for k, v in scope.get("headers", []) if k.lower() == b"authorization"), None)
        return self.state.tokens.identify(auth)

    async def _throttle(self, cfg: FaultConfig, scope: Scope, send: Send, retry_after: float, why: str) -> None:
        """429 like Graph's (SharePoint's on ``/_api``); remembers the Retry-After so an early retry counts as a
        violation. A burst also holds the caller's budget for that long; a sustained window needs no such hold."""
        state = self.state
        info = self._caller(scope)
        if info is not None:
            key = (_bucket(scope["path"]), info.client_id, info.tenant_id)
            now = time.monotonic()
            # Judged by when the request came in, before any added latency (model/pause.py says how).
            held = cfg._not_before.setdefault(key, RetryAfterHold())
            early = held.early(float(scope.get("arrived_at", now)))
            if early is not None:
                state.stats.violation(f"fault layer {key[0]}", key[1:], *early)
            held.hold(now, now + retry_after)
            if why == "burst_429" and key[0] == "sharepoint":
                state.sp_quota.force(key[1], key[2], retry_after)
            elif why == "burst_429":
                state.throttle.force(key[0], key[1], key[2], retry_after)
            if key[0] == "presence":
                state.presence_reads.pause(key[2], retry_after)
        state.stats.throttled += 1
        state.stats.faults_injected[why] += 1
        ra = f"{retry_after:.3f}" if why == "burst_429" else f"{retry_after:.3f}".rstrip("0").rstrip(".")
        path = scope["path"]
        code = "TooManyRequests" if "/_api" not in path else "-2147024860, Microsoft.SharePoint.SPRequestThrottled"
        body = _error_body(path, 429, code, "Please retry again later.", _accept(scope))
        await _send_json(send, 429, body, {"Retry-After": ra})

    async def _mangle(self, scope: Scope, receive: Receive, send: Send, how: str) -> None:
        """Run the app, then send its response cut short: dropped connection or truncated JSON."""
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = dict(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, capture)
        body = b"".join(chunks) or b'{"value":[]}'
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        self.state.stats.faults_injected[how] += 1
        if how == "truncate":
            cut = body[: max(1, len(body) // 2)]
            headers.append((b"content-length", str(len(cut)).encode()))
            await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
            await send({"type": "http.response.body", "body": cut})
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        # Returning without the final body message makes the server close the connection mid-response.


def wrap(app: Any, state: EmulatorState) -> Any:
    """The fault middleware around ``app``; a default (inactive) FaultConfig goes into ``state.faults``."""
    if not isinstance(state.faults, FaultConfig):
        state.faults = FaultConfig()
    return FaultMiddleware(app, state)
