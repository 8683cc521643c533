"""Latency models for the fault layer: one spec for everything, or one per kind of call.

A spec is ``fixed:MS``, ``uniform:MIN,MAX``, ``exp:MEAN`` (capped at 10x the mean), a single
number (fixed milliseconds) or ``P50:P99`` (log-normal with that median and 99th percentile,
sigma = ln(p99/p50) / 2.3263, a draw capped at 10x p99). A model is either a bare spec, which
applies to every kind of call, or ``KIND=SPEC,KIND=SPEC,...`` with kinds ``presence``,
``directory``, ``batch``, ``sites``, ``token`` and ``other`` (the fallback for kinds not named).
Real services answer different calls at very different speeds; one figure for all hides that.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "LatencyModel", "LatencySpec", "kind_of", "parse_model", "parse_spec"]

KINDS = ("presence", "directory", "batch", "sites", "token", "other")
Z99 = 2.3263  # the standard normal's 99th percentile
_HELP = ("use fixed:MS, uniform:MIN_MS,MAX_MS, exp:MEAN_MS, MS or P50_MS:P99_MS, "
         "optionally per kind: presence=150:400,other=80")
_PRESENCE = re.compile(r"/v1\.0/(?:communications/(?:getpresencesbyuserid|presences)|me/presence"
                       r"|users/[^/]+/presence)(?:/|$)")
_DIRECTORY = re.compile(r"/v1\.0/(?:users|me|domains)(?:[/(?]|$)")
_TOKEN = re.compile(r"/(?:oauth2/|\.well-known/|v2\.0/\.well-known/|discovery/|userrealm/)|/devicelogin")


@dataclass(frozen=True)
class LatencySpec:
    """One distribution of added latency, in milliseconds."""

    kind: str  # fixed | uniform | exp | lognormal
    a: float  # fixed: ms; uniform: min; exp: mean; lognormal: p50
    b: float  # fixed: ms; uniform: max; exp: cap; lognormal: p99

    @property
    def sigma(self) -> float:
        return math.log(self.b / self.a) / Z99 if self.kind == "lognormal" and self.a > 0 else 0.0

    @property
    def cap(self) -> float:
        """Largest draw in ms (10x the mean for exp, 10x p99 for log-normal)."""
        return self.b * 10 if self.kind == "lognormal" else self.b

    def draw_ms(self, rng: random.Random) -> float:
        """One latency in ms from ``rng`` (one draw at most, so a seed reproduces a run)."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "exp":
            return min(rng.expovariate(1.0 / self.a), self.b)
        if self.a <= 0:
            return 0.0
        return min(rng.lognormvariate(math.log(self.a), self.sigma), self.cap)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dist": self.kind}
        if self.kind == "fixed":
            out["ms"] = self.a
        elif self.kind == "uniform":
            out.update(min_ms=self.a, max_ms=self.b)
        elif self.kind == "exp":
            out.update(mean_ms=self.a, cap_ms=self.b)
        else:
            out.update(p50_ms=self.a, p99_ms=self.b, sigma=round(self.sigma, 6), cap_ms=self.cap)
        return out


@dataclass(frozen=True)
class LatencyModel:
    """Which spec each kind of call gets; ``default`` serves kinds not named (None: no latency)."""

    per_kind: tuple[tuple[str, LatencySpec], ...]
    default: LatencySpec | None

    def spec_for(self, kind: str) -> LatencySpec | None:
        for name, spec in self.per_kind:
            if name == kind:
                return spec
        return self.default

    def to_json(self) -> dict[str, Any]:
        kinds = {k: s.to_json() for k, s in self.per_kind}
        if self.default is not None:
            kinds["other" if self.per_kind else "*"] = self.default.to_json()
        return kinds


def _bad(spec: str) -> ValueError:
    return ValueError(f"latency {spec!r}: {_HELP}")


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(spec) from None
    if not math.isfinite(value) or value < 0:
        raise _bad(spec)
    return value


def parse_spec(spec: str) -> LatencySpec:
    """One spec (see the module doc); ValueError when it is not one."""
    text = spec.strip()
    head, sep, args = text.partition(":")
    name = head.strip().lower()
    if sep and name.isalpha():
        nums = [_number(x, spec) for x in args.split(",")] if args.strip() else []
        if name == "fixed" and len(nums) == 1:
            return LatencySpec("fixed", nums[0], nums[0])
        if name == "uniform" and len(nums) == 2 and nums[0] <= nums[1]:
            return LatencySpec("uniform", nums[0], nums[1])
        if name == "exp" and len(nums) == 1 and nums[0] > 0:
            return LatencySpec("exp", nums[0], nums[0] * 10)
        raise _bad(spec)
    if sep:
        p50, p99 = _number(head, spec), _number(args, spec)
        if p50 <= 0 or p99 < p50:
            raise ValueError(f"latency {spec!r}: P50:P99 needs 0 < p50 <= p99")
        return LatencySpec("fixed", p50, p50) if p99 == p50 else LatencySpec("lognormal", p50, p99)
    ms = _number(text, spec)
    return LatencySpec("fixed", ms, ms)


def _segments(text: str) -> list[str]:
    """``KIND=SPEC`` pieces; a comma inside a spec (``uniform:A,B``) stays with its piece."""
    out: list[str] = []
    for piece in text.split(","):
        if "=" in piece or not out:
            out.append(piece)
        else:
            out[-1] += "," + piece
    return out


def parse_model(text: str | None) -> LatencyModel | None:
    """A bare spec (every kind) or ``KIND=SPEC,...``; None/"none"/"off"/"0" -> no latency."""
    if text is None or text.strip().lower() in ("", "none", "off", "0"):
        return None
    if "=" not in text:
        return LatencyModel((), parse_spec(text))
    kinds: dict[str, LatencySpec] = {}
    for seg in _segments(text):
        name, sep, spec = seg.partition("=")
        kind = name.strip().lower()
        if not sep or kind not in KINDS:
            raise ValueError(f"latency {text!r}: {name.strip()!r} is not one of {', '.join(KINDS)}")
        if kind in kinds:
            raise ValueError(f"latency {text!r}: {kind} is given twice")
        kinds[kind] = parse_spec(spec)
    default = kinds.pop("other", None)
    return LatencyModel(tuple(kinds.items()), default)


def kind_of(path: str) -> str:
    """The kind of call a request path is: presence, directory, batch, sites, token or other."""
    p = path.lower()
    if p.startswith("/sites/") or p.startswith("/v1.0/sites/"):
        return "sites"
    if p.startswith("/v1.0/"):
        if p.rstrip("/") == "/v1.0/$batch":
            return "batch"
        if _PRESENCE.match(p):
            return "presence"
        if _DIRECTORY.match(p):
            return "directory"
        return "other"
    if _TOKEN.search(p):
        return "token"
    return "other"
