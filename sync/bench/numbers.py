"""Small order statistics shared by the baselines and the report (no numpy: a few hundred values at most)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

__all__ = ["median", "percentile"]


def median(values: Iterable[float]) -> float | None:
    """The median, or None for no values."""
    data = list(values)
    return statistics.median(data) if data else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100): a value that was observed; None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not between 0 and 100")
    data = sorted(values)
    if not data:
        return None
    rank = max(1, math.ceil(q / 100 * len(data)))
    return data[rank - 1]
