"""Inline SVG charts for report.html: no script, no external resource; every label HTML-escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

__all__ = ["AVAILABILITY_COLORS", "line_chart", "stacked_bars"]

AVAILABILITY_COLORS = {
    "Available": "#92c353", "AvailableIdle": "#b5d98a", "Busy": "#c4314b", "BusyIdle": "#e08a99",
    "DoNotDisturb": "#8b1a2e", "BeRightBack": "#fcd116", "Away": "#f8b800", "Offline": "#8a8886",
    "PresenceUnknown": "#c8c6c4",
}
PALETTE = ("#0078d4", "#c4314b", "#498205", "#8764b8", "#ca5010", "#038387", "#986f0b", "#5c2e91")
W, H, LEFT, BOTTOM, TOP, RIGHT = 760, 260, 48, 34, 12, 150


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def _legend(names: Sequence[str], colors: Mapping[str, str]) -> str:
    items = []
    for i, name in enumerate(names):
        y = TOP + 14 * i
        items.append(f'<rect x="{W - RIGHT + 10}" y="{y}" width="10" height="10" fill="{colors[name]}"/>'
                     f'<text x="{W - RIGHT + 24}" y="{y + 9}">{escape(name)}</text>')
    return "".join(items)


def _axis(top: float, unit: str) -> str:
    """The y axis from 0 to ``top`` with 4 grid lines."""
    parts = []
    plot_h = H - TOP - BOTTOM
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(_num(value))}</text>')
    parts.append(f'<text x="4" y="{TOP - 2}" class="unit">{escape(unit)}</text>')
    return "".join(parts)


def _svg(title: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" class="chart">'
            f"<title>{escape(title)}</title>{body}</svg>")


def stacked_bars(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]],
                 colors: Mapping[str, str], unit: str) -> str:
    """One bar per category, stacked by series (in the mapping's order)."""
    names = list(series)
    colors = {n: colors.get(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)}
    totals = [sum(series[n][i] for n in names) for i in range(len(categories))]
    top = max(totals, default=0.0) or 1.0
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / max(len(categories), 1)
    parts = [_axis(top, unit)]
    for i, cat in enumerate(categories):
        x = LEFT + i * slot + slot * 0.1
        y = float(TOP + plot_h)
        for n in names:
            h = plot_h * series[n][i] / top
            if h > 0:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
                             f'fill="{colors[n]}"><title>{escape(f"{cat}: {n} {_num(series[n][i])} {unit}")}'
                             f"</title></rect>")
        parts.append(f'<text x="{x + slot * 0.4:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">'
                     f"{escape(cat)}</text>")
    parts.append(_legend(names, colors))
    return _svg(title, "".join(parts))


def line_chart(title: str, lines: Mapping[str, Sequence[tuple[datetime, float]]], unit: str) -> str:
    """One step line per name over time (a count holds until the next point), with dots at the points."""
    names = list(lines)
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    points = [p for n in names for p in lines[n]]
    if not points:
        return _svg(title, f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data in this range</text>')
    t0 = min(t for t, _ in points).timestamp()
    t1 = max(t for t, _ in points).timestamp()
    span = (t1 - t0) or 1.0
    top = max(v for _, v in points) or 1.0
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def xy(t: datetime, v: float) -> tuple[float, float]:
        return LEFT + plot_w * (t.timestamp() - t0) / span, TOP + plot_h - plot_h * v / top

    parts = [_axis(top, unit)]
    for n in names:
        pts = sorted(lines[n])
        path: list[str] = []
        prev_y = None
        for t, v in pts:
            x, y = xy(t, v)
            if prev_y is not None:
                path.append(f"L{x:.1f},{prev_y:.1f}")
            path.append(f"{'M' if not path else 'L'}{x:.1f},{y:.1f}")
            prev_y = y
        end_x = LEFT + plot_w
        if prev_y is not None:
            path.append(f"L{end_x:.1f},{prev_y:.1f}")
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colors[n]}" stroke-width="2"/>')
        for t, v in pts:
            x, y = xy(t, v)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colors[n]}">'
                         f"<title>{escape(f'{n} {t:%Y-%m-%d %H:%M} UTC: {_num(v)}')}</title></circle>")
    for stamp, x in ((t0, float(LEFT)), (t1, float(LEFT + plot_w))):
        label = datetime.fromtimestamp(stamp, UTC).strftime("%m-%d %H:%M")
        parts.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{escape(label)}</text>')
    parts.append(_legend(names, colors))
    return _svg(title, "".join(parts))
