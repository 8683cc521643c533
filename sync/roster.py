"""The UPN rules under their former name: everything lives in `sync.validation` now."""

from __future__ import annotations

from sync.validation import (
    DirectoryIndex,
    Domains,
    Validator,
    Verdict,
    is_valid_upn,
    judge,
    normalize,
    resolved_so_far,
    summarize,
    validate,
)

__all__ = [
    "DirectoryIndex",
    "Domains",
    "Validator",
    "Verdict",
    "is_valid_upn",
    "judge",
    "normalize",
    "resolved_so_far",
    "summarize",
    "validate",
]
