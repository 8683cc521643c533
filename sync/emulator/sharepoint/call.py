"""The request and result types SharePoint REST handlers share, and their small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..identity.tokens import TokenInfo
from ..model.tenant import Site, SpList, Tenant
from . import entities as sj

__all__ = ["ARGUMENT", "INVALID_QUERY", "SpCall", "SpResult", "err", "list_uri", "ok", "project", "selected",
           "sp_error_result"]

INVALID_QUERY = "-1, Microsoft.SharePoint.Client.InvalidClientQueryException"
ARGUMENT = "-2147024809, System.ArgumentException"


@dataclass
class SpCall:
    method: str  # effective verb: GET, POST, MERGE, DELETE (X-HTTP-Method applied)
    path: str  # decoded path after /_api/, no leading slash, e.g. "web/lists/GetByTitle('Agents')/items"
    query: dict[str, str]  # decoded query parameters
    headers: dict[str, str]  # lower-case names
    body: bytes
    origin: str  # scheme://host:port of this emulator
    tenant: Tenant
    site: Site
    token: TokenInfo | None
    fmt: str  # sj.VERBOSE | sj.MINIMAL | sj.NOMETADATA
    arrived_at: float | None = None  # monotonic time the request came in (a batch's parts: the batch's)
    refuse: tuple[str, ...] = ()  # request shapes the tenant refuses (faults/refuse.py)

    @property
    def api(self) -> str:
        return f"{self.origin}{self.site.path}/_api"

    def q(self, name: str) -> str | None:
        want = name.lstrip("$").lower()
        for k, v in self.query.items():
            if k.lstrip("$").lower() == want:
                return v
        return None


@dataclass
class SpResult:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


def sp_error_result(fmt: str, status: int, code: str, message: str,
                    headers: dict[str, str] | None = None) -> SpResult:
    key = "error" if fmt == sj.VERBOSE else "odata.error"
    body = {key: {"code": code, "message": {"lang": "en-US", "value": message}}}
    ctype = sj.CONTENT_TYPES[sj.VERBOSE if fmt == sj.VERBOSE else sj.NOMETADATA]
    return SpResult(status, body, dict(headers or {}), ctype)


def ok(call: SpCall, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> SpResult:
    return SpResult(status, body, dict(headers or {}), sj.CONTENT_TYPES[call.fmt])


def err(call: SpCall, status: int, code: str, message: str) -> SpResult:
    return sp_error_result(call.fmt, status, code, message)


def selected(call: SpCall) -> list[str] | None:
    raw = call.q("select")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else None


def project(call: SpCall, props: dict[str, Any]) -> dict[str, Any] | SpResult:
    try:
        return sj.select(props, selected(call))
    except KeyError as exc:
        return err(call, 400, INVALID_QUERY, f"The field or property '{exc.args[0]}' does not exist.")


def list_uri(call: SpCall, lst: SpList) -> str:
    return f"{call.api}/Web/Lists(guid'{lst.id}')"
