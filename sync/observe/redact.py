"""The redaction rule every operator-facing text passes through: log lines, alerts, health answers."""

from __future__ import annotations

import re

__all__ = ["TOKENISH", "redact"]

# Bearer tokens, JWTs and the local tenant's opaque tokens: never shown, whatever carries them.
TOKENISH = re.compile(r"(eyJ[\w-]{8,}\.[\w.-]+|0\.EMU\.[\w-]+|(?i:bearer)\s+[\w.~+/=-]{16,})")


def redact(text: str) -> str:
    """``text`` with anything token-like masked and secret URL parameters (code, client_secret, ...) hidden."""
    from ..http import sanitize_url  # httpx: loaded only where alerts are made, not by the CLI's log filter

    return sanitize_url(TOKENISH.sub("***", text))
