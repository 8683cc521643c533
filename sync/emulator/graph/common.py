"""Helpers the Graph v1.0 handlers share: registration with Graph errors, opaque page tokens, links."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

from .router import GraphRequest, GraphResponse, GraphRouter, Handler, error

__all__ = ["CONTENT_TYPE", "Reject", "add", "context", "decode_token", "encode_token", "link"]

CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


class Reject(Exception):
    """Raised by handler helpers to answer with a Graph error instead of a result."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = error(status, code, message)


def add(router: GraphRouter, method: str, pattern: str, endpoint: str, fn: Handler, *,
        bucket: str = "directory", permissions: tuple[str, ...] = (), cost: int = 1) -> None:
    """Register ``fn`` so that a ``Reject`` raised anywhere inside becomes its Graph error."""
    async def run(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        try:
            return await fn(req, m)
        except Reject as rej:
            return rej.response

    router.route(method, pattern, endpoint, bucket=bucket, permissions=permissions, cost=cost)(run)


def encode_token(payload: dict[str, Any]) -> str:
    """An opaque, URL-safe page/delta token (clients must not parse it, so plain base64 JSON does)."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def link(req: GraphRequest, path: str, params: dict[str, str]) -> str:
    """Absolute URL under this emulator's /v1.0, query encoded as Graph writes it ($ and commas kept)."""
    query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=',()@:$')}" for k, v in params.items())
    return f"{req.base_url}/v1.0{path}" + (f"?{query}" if query else "")


def context(req: GraphRequest, fragment: str) -> str:
    return f"{req.base_url}/v1.0/$metadata#{fragment}"
