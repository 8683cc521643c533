"""The "request shapes" row of ``doctor``: which of the job's faster request shapes this tenant accepts, and the
rung of each ladder (``graph/shapes.LADDERS``) the job will use.

The job learns a refusal only when it hits one, mid-run, and then drops a rung for a day. An operator wants to know
before: whether a cold start will take the fast path, and whether some ladder has nothing left (then the job cannot
work at all). So each shape gets ONE minimal request (``$top=1``, ``$select=id``), and its answer is classified as
the job classifies it (``graph/shapes.is_refusal``): 2xx accepted, 400/501 refused (the job falls back), anything
else failed, which is shown but says nothing about the shape. Slower rungs are probed only when every faster one
was refused, since only then does the job depend on them. Every probe is a read: ``$batch`` carries one GET.

``judge`` is pure (answers in, a ``Row`` out); ``ShapeProbes`` sends the requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..graph.shapes import LADDERS, REFUSAL_STATUS
from .probe import Answer, Caller
from .rules import FAIL, OK, WARN, Row

__all__ = ["ACCEPTED", "FAILED", "NOT_PROBED", "PROBES", "REFUSED", "RUNG_NEEDS", "Seen", "ShapeProbes",
           "classify", "ladders_for", "judge"]

ACCEPTED, REFUSED, FAILED, NOT_PROBED = "accepted", "refused", "failed", "not probed"

_FILTER = "users?$select=id&$top=1&$filter="


@dataclass(frozen=True)
class Probe:
    """One minimal request that only a tenant accepting the shape answers with 2xx."""

    method: str
    path: str
    headers: Mapping[str, str] | None = None
    body: Any = None


# Graph probes, in the order they are sent and shown.
PROBES: dict[str, Probe] = {
    "startswith": Probe("GET", _FILTER + "startswith(userPrincipalName,'a')"),
    "ge": Probe("GET", _FILTER + "userPrincipalName ge 'a'"),
    "le": Probe("GET", _FILTER + "userPrincipalName le 'a'"),
    "advanced": Probe("GET", "users?$select=id&$top=1&$count=true&$filter=userPrincipalName ge 'a'",
                      {"ConsistencyLevel": "eventual"}),
    "deltatoken-latest": Probe("GET", "users/delta?$select=id&$deltatoken=latest"),
    "batch": Probe("POST", "$batch",
                   body={"requests": [{"id": "1", "method": "GET", "url": "/users?$select=id&$top=1"}]}),
    # Sent only when the faster rungs were refused:
    "paging": Probe("GET", "users?$select=id&$top=1"),
    "delta": Probe("GET", "users/delta?$select=id"),
}
FIRST = ("startswith", "ge", "le", "advanced", "deltatoken-latest", "batch")

# What each rung of each ladder needs accepted. "single" (one request per call) is proven by any single Graph GET
# that was accepted; "sharepoint-rest" and "rest-single" by SharePoint REST's answer for the list (site row).
RUNG_NEEDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("directory", "startswith"): ("startswith",),
    ("directory", "ranges"): ("ge", "le"),
    ("directory", "advanced"): ("advanced",),
    ("directory", "paging"): ("paging",),
    ("directory", "delta"): ("delta",),
    ("cursor", "deltatoken-latest"): ("deltatoken-latest",),
    ("cursor", "delta-round"): ("delta",),
    ("batch", "batch"): ("batch",),
    ("batch", "single"): ("single",),
    ("list", "list-route"): ("list-route",),
    ("list", "sharepoint-rest"): ("sharepoint-rest",),
    ("rest-batch", "rest-batch"): ("rest-batch",),
    ("rest-batch", "rest-single"): ("rest-single",),
}

# What a slower rung costs, said in the fix when the job has to use it.
_COST: dict[tuple[str, str], str] = {
    ("directory", "ranges"): "the first directory read may take a little longer",
    ("directory", "advanced"): "the first directory read may take a little longer (advanced queries are "
                               "eventually consistent: a user added seconds ago is caught by the next delta round)",
    ("directory", "paging"): "a cold start reads the directory one page after another (about 15-30 s for "
                             "100,000 users); agents are looked up exactly meanwhile, so presence does not wait",
    ("directory", "delta"): "a cold start reads the directory as a full /users/delta round (about 500 pages for "
                            "100,000 users); agents are looked up exactly meanwhile, so presence does not wait",
    ("cursor", "delta-round"): "a cold start reads the directory a second time, as a full /users/delta round "
                               "beside the read, to get its change cursor; presence does not wait for it",
    ("batch", "single"): "lookups and list-route writes go one request at a time (20 times the requests)",
    ("list", "sharepoint-rest"): "the Agent list is read through SharePoint REST",
    ("rest-batch", "rest-single"): "write-back sends one SharePoint REST update per item (100 times the requests)",
}


@dataclass(frozen=True)
class Seen:
    """What one shape got: its verdict, the answer behind it (None when derived or not probed) and why."""

    verdict: str
    answer: Answer | None = None
    why: str = ""  # for derived verdicts and shapes not probed
    derived: bool = False  # judged from another request, not a probe of its own (not listed by name)


def classify(answer: Answer) -> str:
    """accepted (2xx), refused (400/501, as ``graph/shapes.is_refusal`` judges it) or failed (anything else)."""
    if answer.ok:
        return ACCEPTED
    if answer.status in REFUSAL_STATUS and "syncstate" not in answer.code.lower():
        return REFUSED
    return FAILED


def ladders_for(mode: str) -> tuple[str, ...]:
    """The ladders an account of ``mode`` climbs: application accounts read the list through the list ladder and
    write through Graph; delegated accounts read and write through SharePoint REST (its ``rest-batch`` ladder)."""
    return (("directory", "cursor", "batch", "list") if mode == "secret"
            else ("directory", "cursor", "batch", "rest-batch"))


def rung_verdict(ladder: str, rung: str, seen: Mapping[str, Seen]) -> str:
    verdicts = [seen[n].verdict if n in seen else NOT_PROBED for n in RUNG_NEEDS[(ladder, rung)]]
    if REFUSED in verdicts:
        return REFUSED
    if all(v == ACCEPTED for v in verdicts):
        return ACCEPTED
    return FAILED if FAILED in verdicts else NOT_PROBED


def chosen(ladder: str, seen: Mapping[str, Seen]) -> str | None:
    """The rung the job will use: the fastest one not refused (None when every rung is refused)."""
    return next((r for r in LADDERS[ladder].shapes if rung_verdict(ladder, r, seen) != REFUSED), None)


def _refused_before(ladder: str, rung: str | None, seen: Mapping[str, Seen]) -> list[str]:
    """The refused probes of the rungs faster than ``rung`` (all of them when None), by name."""
    shapes = LADDERS[ladder].shapes
    faster = shapes if rung is None else shapes[:shapes.index(rung)]
    names = [n for r in faster for n in RUNG_NEEDS[(ladder, r)] if n in seen and seen[n].verdict == REFUSED]
    return list(dict.fromkeys(names))


def _what(ladder: str) -> str:
    what = LADDERS[ladder].what
    return what[4:] if what.startswith("the ") else what


def _fix_of(ladder: str, account: str) -> str:
    """The ladder's fix without its advice to run doctor (this is doctor)."""
    return LADDERS[ladder].fix.format(account=account).split("; run `presence-sync doctor")[0]


def _unused(mode: str, refused: list[str], seen: Mapping[str, Seen]) -> list[str]:
    """What to say of refused shapes the job does not use now: those of slower rungs, and those of no ladder this
    account climbs (the list route of a delegated account)."""
    out, named = [], set()
    for ladder in ladders_for(mode):
        rung = chosen(ladder, seen)
        if rung is None:
            continue
        shapes = LADDERS[ladder].shapes
        needs = {n for r in shapes for n in RUNG_NEEDS[(ladder, r)]}
        named |= needs
        later = [n for n in refused if n in needs and n not in _refused_before(ladder, rung, seen)]
        if later:
            out.append(f"{', '.join(later)} refused too, which only a slower fallback of {LADDERS[ladder].what} "
                       "would use")
    stray = [n for n in refused if n not in named]
    if stray:
        out.append(f"the job does not use {', '.join(stray)} for this account")
    return out


def judge(mode: str, account: str, seen: Mapping[str, Seen]) -> Row:
    """The row: accepted and refused shapes by name, the rung of every ladder the account climbs; FAIL when a ladder
    has nothing left, WARN when a shape was refused (or could not be judged), OK when every shape was accepted."""
    named = [(n, s) for n, s in seen.items() if not s.derived]
    parts = [f"accepted: {', '.join(n for n, s in named if s.verdict == ACCEPTED) or 'none'}"]
    refused = [n for n, s in named if s.verdict == REFUSED]
    if refused:
        parts.append(f"refused: {', '.join(refused)}")
    failed = [(n, s) for n, s in seen.items() if s.verdict == FAILED and s.answer is not None]
    if failed:
        parts.append("not judged: " + "; ".join(f"{n} ({s.answer.describe()})" for n, s in failed if s.answer))
    lines, moved, dead = [], [], []
    for ladder in ladders_for(mode):
        rung = chosen(ladder, seen)
        before = _refused_before(ladder, rung, seen)
        if rung is None:
            dead.append(ladder)
            lines.append(f"{_what(ladder)}: nothing left ({', '.join(before) or 'every shape'} refused"
                         + "".join(f"; {seen[r].why}" for r in RUNG_NEEDS[(ladder, LADDERS[ladder].shapes[-1])]
                                   if r in seen and seen[r].why) + ")")
            continue
        line = f"{_what(ladder)}: {LADDERS[ladder].title(rung)}"
        state = rung_verdict(ladder, rung, seen)
        if before:
            line += f" ({', '.join(before)} refused)"
            moved.append((ladder, rung, before))
        if state == FAILED:
            line += " (not confirmed: its probe failed)"
        elif state == NOT_PROBED:
            whys = [seen[n].why for n in RUNG_NEEDS[(ladder, rung)] if n in seen and seen[n].why]
            line += f" (not probed: {'; '.join(whys) or 'no probe'})"
        lines.append(line)
    if mode != "secret":
        lines.append(f"{_what('list')}: {LADDERS['list'].title('sharepoint-rest')}, as every delegated account "
                     "reads it")
    detail = "; ".join(parts + lines)
    if dead:
        return Row("shapes", FAIL, detail, "; ".join(_fix_of(lad, account) for lad in dead))
    fixes = [f"for {LADDERS[lad].what} the job uses {LADDERS[lad].title(rung)} instead ({', '.join(before)} refused): "
             f"{_COST[(lad, rung)]}" for lad, rung, before in moved]
    fixes += _unused(mode, refused, seen)
    fix = ("nothing to change: " + "; ".join(fixes)) if fixes else ""
    if failed:
        transient = all(s.answer is not None and (s.answer.status in (0, 429) or s.answer.status >= 500)
                        for _, s in failed)
        fix = "; ".join(x for x in (fix, (
            "the service did not answer now, so those shapes are not judged: run doctor again" if transient else
            "those answers say nothing about the shapes (see their error codes; the permissions row covers 401 "
            "and 403)")) if x)
    return Row("shapes", WARN if fixes or failed else OK, detail, fix)


class ShapeProbes:
    """Sends the probes with the doctor's callers; ``list_route`` is the site answer the agent_list row already
    got (None when that row did not run: ``list_why`` says why), ``rest`` SharePoint REST with the list's URL and
    ``rest_list`` its answer for the list, for delegated accounts."""

    def __init__(self, graph: Caller, list_route: Answer | None, rest: Caller | None = None,
                 list_url: str = "", rest_list: Answer | None = None,
                 list_why: str = "the site and list row did not reach Graph") -> None:
        self.graph = graph
        self.list_route = list_route
        self.list_why = list_why  # why there is no list-route answer
        self.rest = rest
        self.list_url = list_url
        self.rest_list = rest_list

    def send(self, name: str) -> Seen:
        p = PROBES[name]
        answer = self.graph.call(p.method, p.path, body=p.body, headers=dict(p.headers or {}))
        return Seen(classify(answer), answer)

    def run(self, mode: str) -> dict[str, Seen]:
        seen = {name: self.send(name) for name in FIRST}
        seen["list-route"] = self._list_route()
        if all(rung_verdict("directory", r, seen) == REFUSED for r in ("startswith", "ranges", "advanced")):
            seen["paging"] = self.send("paging")
        if seen.get("paging", Seen(ACCEPTED)).verdict == REFUSED or seen["deltatoken-latest"].verdict == REFUSED:
            seen["delta"] = self.send("delta")
        if seen["batch"].verdict == REFUSED:
            seen["single"] = self._single(seen)
        if mode == "secret":
            seen["sharepoint-rest"] = Seen(REFUSED, why="SharePoint REST takes no app-only token made from a "
                                                        "client secret", derived=True)
        elif self.rest is not None and self.rest_list is not None and self.rest_list.ok:
            seen["rest-batch"] = self.rest_batch()
            if seen["rest-batch"].verdict == REFUSED:  # single REST requests: the list read answered
                seen["rest-single"] = Seen(ACCEPTED, self.rest_list, derived=True)
        else:
            seen["rest-batch"] = Seen(NOT_PROBED, why="SharePoint REST did not answer for the list (see the site "
                                                      "and list row)", derived=True)
        return seen

    def _list_route(self) -> Seen:
        """The agent_list row's ``GET sites/{host}:{path}``: 501 is a refusal; 400 and 404 that row reads as a
        wrong SiteUrl, so they judge nothing here."""
        a = self.list_route
        if a is None:
            return Seen(NOT_PROBED, why=self.list_why, derived=True)
        if a.status in (400, 404):
            return Seen(NOT_PROBED, a, why="the site was not found (see the site and list row)", derived=True)
        return Seen(ACCEPTED if a.ok else REFUSED if a.status == 501 else FAILED, a)

    def _single(self, seen: Mapping[str, Seen]) -> Seen:
        """One request per call works when any single Graph GET above was accepted; else plain paging decides."""
        if any(s.verdict == ACCEPTED for n, s in seen.items() if n in PROBES and n != "batch"):
            return Seen(ACCEPTED, why="single Graph requests answer", derived=True)
        paging = seen.get("paging") or self.send("paging")
        return Seen(paging.verdict, paging.answer, derived=True)

    def rest_batch(self) -> Seen:
        """``POST <site>/_api/$batch`` with one GET of the list (a read: no change set)."""
        assert self.rest is not None
        site = self.list_url.split("/_api/", 1)[0]
        boundary = f"batch_{uuid.uuid4()}"
        text = (f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                f"GET {self.list_url}?$select=Id HTTP/1.1\r\nAccept: application/json;odata=nometadata\r\n\r\n"
                f"--{boundary}--\r\n")
        answer = self.rest.call("POST", f"{site}/_api/$batch", content=text.encode(), headers={
            "Content-Type": f"multipart/mixed; boundary={boundary}", "Accept": "multipart/mixed"})
        return Seen(classify(answer), answer)
