"""Small, named price formulas shared by the catalog modules.

Each returns a ``Quote`` whose formula spells out the arithmetic with the rates actually used,
so an operator who overrides a rate in config sees the new number in every explanation.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..money import ceil_div, format_usd
from .spec import PriceFn, Quote

PRICES_AS_OF = "2026-11-21"
"""The day the default rates below were taken from the provider pages (the seeds)."""


def flat(rate: str, label: str) -> PriceFn:
    """A fixed price per run, whatever the parameters."""

    def price(_params: object, rates: Mapping[str, int]) -> Quote:
        return Quote(rates[rate], f"{format_usd(rates[rate])} {label}")

    return price


def per_second(rates: Mapping[str, int], rate: str, seconds: int, qualifier: str = "") -> Quote:
    """``seconds × rate``, e.g. ``8 s × $0.40/s (audio on) = $3.20``."""
    micros = seconds * rates[rate]
    suffix = f" ({qualifier})" if qualifier else ""
    return Quote(micros, f"{seconds} s × {format_usd(rates[rate])}/s{suffix} = {format_usd(micros)}")


def per_clip_seconds(rates: Mapping[str, int], rate: str, seconds: int, clip: int, qualifier: str = "") -> Quote:
    """A rate per ``clip``-second block, prorated: ``10 s / 5 s × $0.20 = $0.40``."""
    micros = ceil_div(seconds * rates[rate], clip)
    suffix = f" ({qualifier})" if qualifier else ""
    return Quote(micros, f"{seconds} s / {clip} s × {format_usd(rates[rate])}{suffix} = {format_usd(micros)}")

