"""SharePoint's OData v3 ``$batch``: a tolerant multipart/mixed reader and a strict, flat CRLF writer.

Requests come as office365-rest-python-client sends them (``email`` serialisation): LF-only
line endings, the body may open with its own ``Content-Type`` header block, writes sit in a
nested ``changeset_<id>`` multipart, GETs are top-level parts, and each sub-request is
``METHOD <absolute url> HTTP/1.1`` + headers + blank line(s) + JSON.
The answer is one flat ``multipart/mixed; boundary=batchresponse_<uuid>`` of
``application/http`` parts in request order, CRLF everywhere (office365 rejects LF-only
parts and ignores nested change-set responses). Batches are not transactional.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .call import SpResult

__all__ = ["SubRequest", "parse_batch", "render_batch"]


@dataclass
class SubRequest:
    method: str
    url: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def parse_batch(content_type: str, body: bytes) -> list[SubRequest]:
    """Every sub-request, change-set members in place; ValueError when the body is not a batch."""
    if "multipart/mixed" not in content_type.lower() or "boundary=" not in content_type.lower():
        raise ValueError("The content type of a batch request must be multipart/mixed with a boundary.")
    stripped = body.lstrip()
    if stripped.startswith(b"--"):
        raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + stripped
    else:
        raw = stripped  # the body carries its own header block
    msg = message_from_bytes(raw)
    if not msg.is_multipart():
        raise ValueError("The batch body is not a multipart/mixed message.")
    out: list[SubRequest] = []
    for part in _parts(msg):
        if part.is_multipart():  # a change set
            out.extend(_http_request(p) for p in _parts(part))
        elif part.get_content_type() == "application/http":
            out.append(_http_request(part))
    return out


def _parts(msg: Message) -> list[Message]:
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _http_request(part: Message) -> SubRequest:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text = data.replace(b"\r\n", b"\n").lstrip(b"\n")
    head, _, rest = text.partition(b"\n\n")
    lines = head.decode("utf-8", "replace").split("\n")
    method, _, target = lines[0].strip().partition(" ")
    url, sep, version = target.rpartition(" ")
    if not sep or not version.upper().startswith("HTTP/"):
        url = target  # no version: the whole rest is the URL
    if not method or not url.strip():
        raise ValueError(f"Invalid request line in batch part: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            headers[k.strip().lower()] = v.strip()
    return SubRequest(method.upper(), url.strip(), headers, rest.strip())


def render_batch(results: list[SpResult]) -> tuple[bytes, str]:
    """The flat multipart answer and its Content-Type."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[bytes] = []
    for res in results:
        reason = HTTPStatus(res.status).phrase if res.status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {res.status} {reason}"]
        if res.body is not None and res.content_type:
            lines.append(f"CONTENT-TYPE: {res.content_type}")
        lines += [f"{k}: {v}" for k, v in res.headers.items()]
        body = b"" if res.body is None else json.dumps(res.body, separators=(",", ":")).encode()
        chunks.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n".encode()
            + "\r\n".join(lines).encode() + b"\r\n\r\n" + body + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/mixed; boundary={boundary}"
