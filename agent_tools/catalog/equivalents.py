"""Endpoints that are the same model on different providers, and how one request becomes the other.

Failover (``toolkit.py``) may send a job to an equivalent endpoint when the chosen provider refuses
the submit before any work began, or has no key configured. Whether two endpoints are "the same
model" and how their parameters translate is catalog knowledge, so it is declared here, next to
the specs, once: each ``Equivalent`` converts validated arguments of its ``source`` tool into
arguments for its ``target`` tool, or raises ``NotEquivalent`` saying which choice has no
counterpart (then the job is never moved: a different video than the one asked for is not a failover).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .spec import ModelInput, ModelSpec


class NotEquivalent(Exception):
    """This request has a choice the other endpoint cannot honour; ``str()`` says which."""


@dataclass(frozen=True)
class Equivalent:
    """``source`` and ``target`` serve one model; ``convert`` maps a validated source Input to
    target arguments (still to be validated by the target spec)."""

    source: str
    target: str
    convert: Callable[[Any], dict[str, Any]]
    note: str = ""
    """Why the two are the same model and how the mapping was decided (shown by ``models show``)."""


def index(pairs: Iterable[Equivalent], catalog: Mapping[str, ModelSpec]) -> dict[str, tuple[Equivalent, ...]]:
    """Tool → its equivalents, checked: both tools exist and live on different providers."""
    result: dict[str, list[Equivalent]] = {}
    for pair in pairs:
        for tool in (pair.source, pair.target):
            if tool not in catalog:
                raise ValueError(f"equivalent {pair.source} → {pair.target}: unknown tool {tool}")
        if catalog[pair.source].provider == catalog[pair.target].provider:
            raise ValueError(f"equivalent {pair.source} → {pair.target}: both on {catalog[pair.source].provider}")
        result.setdefault(pair.source, []).append(pair)
    return {tool: tuple(found) for tool, found in result.items()}


def translate(pair: Equivalent, target: ModelSpec, params: ModelInput) -> ModelInput:
    """The source request as a validated target request, or ``NotEquivalent``."""
    arguments = pair.convert(params)
    try:
        return target.validate(arguments)
    except Exception as exc:  # a mapping bug or an out-of-range value on the other side
        raise NotEquivalent(f"the request does not fit {target.tool}: {exc}") from None
