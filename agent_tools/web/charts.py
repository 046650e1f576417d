"""Spend charts as inline SVG, drawn on the server: no chart library, readable by screen readers
(``role="img"`` with a total in ``aria-label``, a ``<title>`` with the exact amount on every bar),
printable, and testable by parsing the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from markupsafe import Markup

from ..money import format_usd

PALETTE = ("#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#dc2626",
           "#4b5563", "#65a30d")
WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 720, 240, 12, 28, 64


@dataclass(frozen=True)
class Chart:
    svg: Markup
    legend: list[tuple[str, str, int]]  # (key, colour, total micros)
    total_micros: int


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def stacked_spend(series: dict[str, dict[str, int]], days: list[date], *, what: str) -> Chart:
    """One bar per day, stacked by key (model or account); ``series`` is ``{iso day: {key: micros}}``."""
    keys = sorted({k for per_key in series.values() for k in per_key},
                  key=lambda k: -sum(series[d].get(k, 0) for d in series))
    colours = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    totals = [sum(series.get(d.isoformat(), {}).values()) for d in days]
    total = sum(totals)
    peak = max(totals, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.75, 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(what)} by day, {len(days)} days, total {format_usd(total)}" '
             'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" class="gridline"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
                     f'{format_usd(round(peak * fraction, -4))}</text>')  # to the cent
    label_every = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h
        per_key = series.get(day.isoformat(), {})
        parts.append(f'<g class="day" data-day="{day.isoformat()}" data-total="{totals[i]}">')
        parts.append(f'<title>{day.isoformat()}: {format_usd(totals[i])}</title>')
        for key in keys:
            micros = per_key.get(key, 0)
            if not micros:
                continue
            h = plot_h * micros / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colours[key]}" data-key="{escape(key)}" data-micros="{micros}">'
                         f'<title>{day.isoformat()} · {escape(key)}: {format_usd(micros)}</title></rect>')
        parts.append("</g>")
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle" class="axis">'
                         f'{day.strftime("%b %d")}</text>')
    parts.append("</svg>")
    legend = [(k, colours[k], sum(series[d].get(k, 0) for d in series)) for k in keys]
    return Chart(Markup("".join(parts)), legend, total)
