"""Error bodies in the shapes Graph and SharePoint send them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

__all__ = ["graph_error_body", "graph_error", "json_response", "sp_error", "utc_now_iso"]


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def graph_error_body(code: str, message: str, client_request_id: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": utc_now_iso(),
                "request-id": str(uuid.uuid4()),
                "client-request-id": client_request_id or str(uuid.uuid4()),
            },
        }
    }


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> Response:
    data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return Response(data, status_code=status, headers=headers, media_type=content_type if body is not None else None)


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(graph_error_body(code, message), status, headers)


def sp_error(status: int, code: str, message: str, verbose: bool = True,
             headers: dict[str, str] | None = None) -> Response:
    """SharePoint REST error: ``{"error":...}`` in verbose, ``{"odata.error":...}`` otherwise."""
    key = "error" if verbose else "odata.error"
    body = {key: {"code": code, "message": {"lang": "en-US", "value": message}}}
    ctype = "application/json;odata=verbose;charset=utf-8" if verbose else "application/json;odata=nometadata;charset=utf-8"
    return json_response(body, status, headers, content_type=ctype)
