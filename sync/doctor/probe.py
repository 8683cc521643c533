"""Single HTTP reads for ``doctor``: every answer kept as it is (status, Graph error code, request-id), never raised.

A doctor wants to see what the service said, not to hide it behind retries: 429 and 5xx are tried at most three
times (honouring a short Retry-After), then reported as they are.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ..http import USER_AGENT, parse_retry_after, sanitize_url

__all__ = ["Answer", "Caller", "is_tls_error", "tls_fix"]

MAX_WAIT = 5.0  # seconds: the longest Retry-After a doctor waits for


@dataclass(frozen=True)
class Answer:
    """What one request got: ``status`` 0 when no HTTP answer came (``error`` says why)."""

    method: str
    url: str  # sanitised
    status: int
    body: Any = None
    code: str = ""  # Graph's error.code / SharePoint's odata.error code
    message: str = ""
    request_id: str = ""
    headers: dict[str, str] | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """'GET https://... -> HTTP 403 Authorization_RequestDenied: Insufficient ... (request-id ...)'."""
        if self.status == 0:
            return f"{self.method} {self.url}: no answer ({self.error})"
        text = f"{self.method} {self.url} -> HTTP {self.status}"
        if self.code or self.message:
            text += f" {self.code}: {self.message}".rstrip(": ")
        return text + (f" (request-id {self.request_id})" if self.request_id else "")


def is_tls_error(exc: BaseException) -> bool:
    """Whether a connection failed on the server's certificate (an untrusted CA, a wrong host name)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def tls_fix(host: str) -> str:
    return (f"the certificate of {host} is not trusted by this machine: pass --ca-bundle PATH (or CaBundle on "
            "MsGraphPresenceSource, or REQUESTS_CA_BUNDLE / SSL_CERT_FILE) naming the PEM file of the CA that "
            "issued it (verification is never switched off)")


def _error_of(body: Any) -> tuple[str, str]:
    """(code, message) from a Graph ``error`` or a SharePoint ``odata.error`` / verbose ``error`` body."""
    if not isinstance(body, dict):
        return "", ""
    err = body.get("error") or body.get("odata.error")
    if not isinstance(err, dict):
        return "", ""
    msg = err.get("message", "")
    if isinstance(msg, dict):
        msg = msg.get("value", "")
    return str(err.get("code", "")), str(msg)


class Caller:
    """One bearer token and one httpx client; ``call`` returns an ``Answer`` whatever happens."""

    def __init__(self, http: httpx.Client, token: str, root: str = "") -> None:
        self.http = http
        self.token = token
        self.root = root.rstrip("/")
        self.requests = 0

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.root}/{path.lstrip('/')}"

    def call(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
             attempts: int = 3, content: bytes | None = None) -> Answer:
        """``body`` is sent as JSON; ``content`` as it is (a multipart ``$batch``: set its Content-Type)."""
        url = self.url(path)
        hdrs = {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT, "Accept": "application/json",
                **(headers or {})}
        if body is not None:
            content = orjson.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        answer = Answer(method, sanitize_url(url), 0, error="not sent")
        for attempt in range(attempts):
            self.requests += 1
            try:
                resp = self.http.request(method, url, content=content, headers=hdrs)
            except httpx.HTTPError as exc:
                answer = Answer(method, sanitize_url(url), 0, error=type(exc).__name__)
                if is_tls_error(exc):
                    return answer
                time.sleep(min(MAX_WAIT, 0.5 * (attempt + 1)))
                continue
            answer = self._answer(method, url, resp)
            if answer.status not in (429, 500, 502, 503, 504):
                return answer
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            if attempt + 1 < attempts:
                time.sleep(min(MAX_WAIT, wait if wait is not None else 0.5 * (attempt + 1)))
        return answer

    @staticmethod
    def _answer(method: str, url: str, resp: httpx.Response) -> Answer:
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except ValueError:
            body = None
        code, message = ("", "") if resp.status_code < 300 else _error_of(body)
        rid = resp.headers.get("request-id", "") or resp.headers.get("SPRequestGuid", "")
        return Answer(method, sanitize_url(url), resp.status_code, body, code, message[:300], rid,
                      {k.lower(): v for k, v in resp.headers.items()})
