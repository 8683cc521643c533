"""A small fixed set of endpoint names for request metrics: never a raw URL (label values stay bounded)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["ENDPOINTS", "endpoint_of"]

# (name, test on the lower-cased path), first match wins.
_RULES: tuple[tuple[str, str], ...] = (
    ("presence", "getpresencesbyuserid"),
    ("token", "/oauth2/"),
    ("login_discovery", "/.well-known/"),
    ("login_discovery", "/userrealm/"),
    ("sharepoint_contextinfo", "/_api/contextinfo"),
    ("sharepoint_batch", "/_api/$batch"),
    ("sharepoint_items", "/items"),
    ("sharepoint_items", "/getitembyid"),
    ("sharepoint_other", "/_api/"),
    ("graph_batch", "/$batch"),
    ("users_delta", "/users/delta"),
    ("users", "/users"),
    ("domains", "/domains"),
    ("graph_lists", "/sites/"),
)
ENDPOINTS = tuple(dict.fromkeys(name for name, _ in _RULES)) + ("other",)


def endpoint_of(url: str) -> str:
    """The endpoint name for a request URL (``other`` for anything not listed)."""
    path = urlsplit(url).path.lower()
    if "/_api/" in path:
        for name, needle in _RULES:
            if name.startswith("sharepoint") and needle in path:
                return name
        return "sharepoint_other"
    for name, needle in _RULES:
        if not name.startswith("sharepoint") and needle in path:
            return name
    return "other"
