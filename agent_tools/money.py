"""Money as integer micro-dollars.

Every amount inside videogen is an ``int`` of micro-dollars (1 USD = 1,000,000) so that
sums over thousands of jobs never drift the way floats do; dollars appear only at the edges:
parsing an operator's config or a CLI flag, and formatting for a person.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000


def usd(amount: str | int | float | Decimal) -> int:
    """Dollars (as written by a person) to micro-dollars, rounding half up to the micro.

    Floats go through ``str`` first so ``0.045`` means 45,000 micros, not 44,999.
    """
    try:
        value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    except InvalidOperation as exc:
        raise ValueError(f"{amount!r} is not a dollar amount") from exc
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not a finite dollar amount")
    return int((value * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))


CEILING_USD = Decimal(10**9)


def ceiling_micros(amount: str | int | float | Decimal) -> int:
    """A "costs at most" ceiling in micro-dollars. Past a billion dollars every price is under it,
    so larger amounts (1e22 from a fuzzing LLM) mean the same and cannot overflow the arithmetic."""
    value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    return usd(min(value, CEILING_USD)) if value.is_finite() else usd(CEILING_USD)


def to_usd(micros: int) -> float:
    """Micro-dollars to a float of dollars, for JSON output only."""
    return micros / MICROS_PER_USD


def format_usd(micros: int) -> str:
    """``$2.40``, or more decimals when cents would hide the amount (``$0.0175``)."""
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    text = f"{Decimal(micros) / MICROS_PER_USD:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    frac = frac.ljust(2, "0")
    return f"{sign}${whole}.{frac}"


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up: a price is never rounded in the user's favour by accident."""
    return -(-numerator // denominator)
