"""Request shapes the local tenant can refuse, as a tenant that does not support them answers (``refuse`` switch).

A job that chooses a shape for speed must fall back when a real tenant says no; these answers let tests and the
benchmark prove it. Names and answers (each follows the Microsoft document named):

- ``ge``, ``le``, ``startswith``: ``GET /users`` with that operator in ``$filter`` in a default query (without
  ``ConsistencyLevel: eventual`` and ``$count=true``): 400 ``Request_UnsupportedQuery``, "Operator '...' is not
  supported because the required parameters might be missing..." ("Advanced query capabilities on Microsoft
  Entra ID objects"). With both advanced parameters it is accepted, unless ``advanced`` is refused too.
- ``advanced``: a ``/users`` request with ``ConsistencyLevel: eventual``, ``$count=true`` or ``$search``: 400
  ``Request_UnsupportedQuery`` (as in tenants without advanced queries, e.g. Azure AD B2C).
- ``deltatoken-latest``: ``GET /users/delta?$deltatoken=latest``: 400 ``Request_UnsupportedQuery`` ("user: delta").
- ``batch``: ``POST /v1.0/$batch``: 501 ``NotImplemented``; SharePoint REST ``POST .../_api/$batch``: 400
  ("Combine multiple HTTP requests using JSON batching"; SharePoint "Make batch requests with the REST APIs").
- ``list-route``: every Graph ``/sites/...`` and ``/drives/...`` request, also inside ``$batch``: 501
  ``notSupported``.
- ``list-threshold``: a list-item read with ``$filter`` or ``$orderby`` other than on Id, on a list of more than
  5,000 items: the list view threshold error even on indexed columns and with ``Prefer:
  HonorNonIndexedQueriesWarningMayFailRandomly`` (SharePoint "Manage large lists and libraries").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

__all__ = ["REFUSABLE_SHAPES", "graph_refusal", "parse_refuse"]

REFUSABLE_SHAPES = ("ge", "le", "startswith", "advanced", "deltatoken-latest", "batch", "list-route",
                    "list-threshold")
_OPERATOR = {"ge": re.compile(r"\sge\s", re.I), "le": re.compile(r"\sle\s", re.I),
             "startswith": re.compile(r"\bstartswith\s*\(", re.I)}
_SHOWN = {"ge": "ge", "le": "le", "startswith": "startsWith"}
_ADVANCED_MSG = ("Operator '{}' is not supported because the required parameters might be missing. Try adding "
                 "$count=true query parameter and ConsistencyLevel:eventual header. Refer to "
                 "https://aka.ms/graph-docs/advanced-queries for more information")

Refusal = tuple[str, int, str, str]  # (shape, status, code, message)


def parse_refuse(value: str | Iterable[str] | None) -> list[str]:
    """The shape names of a switch value (a list or a comma-separated string); ValueError for unknown names."""
    if value is None:
        return []
    names = value.split(",") if isinstance(value, str) else list(value)
    out = [str(n).strip().lower() for n in names if str(n).strip()]
    unknown = [n for n in out if n not in REFUSABLE_SHAPES]
    if unknown:
        raise ValueError(f"unknown shape(s) to refuse: {', '.join(unknown)} (known: {', '.join(REFUSABLE_SHAPES)})")
    return list(dict.fromkeys(out))


def graph_refusal(refused: Iterable[str], method: str, path: str, q: Callable[[str], str | None],
                  headers: dict[str, str]) -> Refusal | None:
    """How a tenant refusing ``refused`` answers this Graph request (path after /v1.0), or None to serve it."""
    shapes = set(refused)
    if not shapes:
        return None
    low = path.lower().rstrip("/")
    if "batch" in shapes and low == "/$batch":
        return ("batch", 501, "NotImplemented", "JSON batching ($batch) is not supported for this tenant.")
    if "list-route" in shapes and (low.startswith("/sites") or low.startswith("/drives")):
        return ("list-route", 501, "notSupported",
                "Lists, list items and files of this site cannot be reached through Microsoft Graph.")
    if not low.startswith("/users"):
        return None
    advanced = headers.get("consistencylevel", "").lower() == "eventual" and (q("count") or "").lower() == "true"
    if "advanced" in shapes and (headers.get("consistencylevel") or (q("count") or "").lower() == "true"
                                 or q("search") is not None):
        return ("advanced", 400, "Request_UnsupportedQuery", "Advanced query parameters ($count, $search and the "
                "ConsistencyLevel header) are not supported in this tenant.")
    if "deltatoken-latest" in shapes and low.startswith("/users/delta") and \
            (q("deltatoken") or "").strip().lower() == "latest":
        return ("deltatoken-latest", 400, "Request_UnsupportedQuery",
                "The value 'latest' is not supported for $deltatoken.")
    flt = q("filter")
    if low == "/users" and flt and not advanced:
        for shape, pattern in _OPERATOR.items():
            if shape in shapes and pattern.search(" " + flt + " "):
                return (shape, 400, "Request_UnsupportedQuery", _ADVANCED_MSG.format(_SHOWN[shape]))
    return None

