"""Which models (and which parameters) give the user what they want, cheapest first.

Solved from the catalog itself, nothing hand-listed: for each model, the values of its length,
resolution, aspect-ratio and audio parameters are read from its JSON schema (enums, integer ranges,
``num_frames``/``fps``), every combination is validated by the model's own pydantic ``Input`` (so
combinations a model refuses, such as Hailuo 02 at 10 s and 1080p, never appear) and priced by its
own price formula, with the operator's rate overrides. Whether a video has sound comes from
``OutputSpec.audio`` and a boolean ``*audio*`` parameter.

When nothing satisfies every wish, ``Recommendation.relaxations`` holds, for each wish dropped in
turn, the nearest options that satisfy all the others ("6 s with audio under $1: none; without the
budget: Veo 3 Fast 6 s with audio $2.40; without audio: Hailuo 02 6 s $0.27").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .catalog import CATALOG, Category, ModelSpec, OutputKind
from .errors import InvalidArguments, UserError
from .money import format_usd

DURATION_TOLERANCE = 0.5
"""Seconds an option's length may differ from the wanted length and still count as that length."""


@dataclass(frozen=True)
class Wants:
    """What the user asked for; None = no preference."""

    category: Category | None = None
    duration: float | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    audio: bool | None = None
    budget_micros: int | None = None

    def describe(self) -> str:
        bits = [self.category.value if self.category else "",
                f"{_num(self.duration)} s" if self.duration is not None else "",
                self.resolution or "", self.aspect_ratio or "",
                {True: "with audio", False: "without audio", None: ""}[self.audio],
                f"under {format_usd(self.budget_micros)}" if self.budget_micros is not None else ""]
        return " ".join(b for b in bits if b) or "anything"


@dataclass(frozen=True)
class Option:
    """One model with one set of parameters, priced."""

    tool: str
    title: str
    category: str
    params: dict[str, Any]
    cost_micros: int
    formula: str
    duration: float | None
    resolution: str | None
    aspect_ratio: str | None
    audio: bool

    def describe(self) -> str:
        bits = [f"{self.title.split(' — ')[0]} ({self.category})"]
        if self.duration is not None:
            bits.append(f"{_num(self.duration)} s")
        if self.resolution:
            bits.append(self.resolution)
        if self.aspect_ratio:
            bits.append(self.aspect_ratio)
        bits.append("with audio" if self.audio else "without audio")
        return " ".join(bits) + f" {format_usd(self.cost_micros)}"

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "title": self.title, "category": self.category, "arguments": self.params,
                "cost_usd": self.cost_micros / 1_000_000, "formula": self.formula, "duration_seconds": self.duration,
                "resolution": self.resolution, "aspect_ratio": self.aspect_ratio, "audio": self.audio}


@dataclass(frozen=True)
class Relaxation:
    dropped: str  # the wish left out: budget, audio, duration, resolution, aspect_ratio
    options: list[Option]


@dataclass
class Recommendation:
    wants: Wants
    options: list[Option]
    relaxations: list[Relaxation] = field(default_factory=list)

    def text(self) -> str:
        if self.options:
            lines = [f"{len(self.options)} option(s) for {self.wants.describe()}, cheapest first:"]
            lines += [f"- {o.tool}: {o.describe()} ({o.formula}); arguments {o.params}" for o in self.options]
            return "\n".join(lines)
        lines = [f"{self.wants.describe()}: none."]
        for relaxation in self.relaxations:
            nearest = "; ".join(f"{o.tool}: {o.describe()}" for o in relaxation.options) or "nothing either"
            lines.append(f"Without the {relaxation.dropped.replace('_', ' ')} wish: {nearest}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"wants": self.wants.describe(), "options": [o.as_dict() for o in self.options],
                "relaxations": [{"dropped": r.dropped, "options": [o.as_dict() for o in r.options]}
                                for r in self.relaxations]}


# -- reading a model's schema --------------------------------------------------------------------

def _num(value: float) -> str:
    return f"{value:g}"


def _seconds(value: Any) -> float | None:
    """``5``, ``"6"``, ``"8s"`` → seconds; anything else → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*s?\s*", value)):
        return float(match.group(1))
    return None


def _integer_choices(prop: Mapping[str, Any], wanted: Iterable[float]) -> list[int]:
    """Values worth trying of an integer range: its ends, its default, and each wanted value clipped in."""
    low, high = prop.get("minimum"), prop.get("maximum")
    picks = {v for v in (low, high, prop.get("default")) if isinstance(v, int)}
    for value in wanted:
        candidate = round(value)
        if low is not None:
            candidate = max(low, candidate)
        if high is not None:
            candidate = min(high, candidate)
        picks.add(candidate)
    return sorted(picks)


def _choices(prop: Mapping[str, Any], wanted: Iterable[float] = ()) -> list[Any]:
    if "enum" in prop:
        return list(prop["enum"])
    if prop.get("type") == "boolean":
        return [True, False]
    if prop.get("type") == "integer":
        return _integer_choices(prop, wanted)
    return [prop["default"]] if "default" in prop else []


def _audio_param(spec: ModelSpec) -> str | None:
    props = spec.schema().get("properties", {})
    return next((n for n, p in props.items() if "audio" in n and p.get("type") == "boolean"), None)


def _dimensions(spec: ModelSpec, wants: Wants) -> dict[str, list[Any]]:
    """The parameters that decide length, resolution, shape and sound, with the values to try."""
    props = spec.schema().get("properties", {})
    dims: dict[str, list[Any]] = {}
    if "duration" in props:
        dims["duration"] = _choices(props["duration"], [wants.duration] if wants.duration else [])
    elif "num_frames" in props and "fps" in props:
        fps = props["fps"].get("default")
        target = [wants.duration * fps] if wants.duration and fps else []
        dims["num_frames"] = _choices(props["num_frames"], target)
    # Resolution changes the price, so every one is tried; the frame's shape only when it is asked for.
    for name in ("resolution", "aspect_ratio") if wants.aspect_ratio else ("resolution",):
        if name in props:
            dims[name] = [v for v in _choices(props[name]) if v != "auto"] or _choices(props[name])
    audio = _audio_param(spec)
    if audio:
        dims[audio] = [True, False]
    return {k: v for k, v in dims.items() if v}


def options_for(spec: ModelSpec, wants: Wants = Wants(), overrides: Mapping[str, int] | None = None) -> list[Option]:
    """Every valid combination of ``spec``'s deciding parameters, priced."""
    dims = _dimensions(spec, wants)
    audio_param = _audio_param(spec)
    found: list[Option] = []
    for values in itertools.product(*dims.values()):
        chosen = dict(zip(dims, values))
        try:
            params, _missing = spec.validate_for_pricing(chosen)
        except InvalidArguments:
            continue  # a combination the model itself refuses
        public = params.public_params()
        quote = spec.price(params, overrides)
        if "duration" in public:
            duration = _seconds(public["duration"])
        elif "num_frames" in public and public.get("fps"):
            duration = round(float(public["num_frames"]) / float(public["fps"]), 1)
        else:
            duration = None
        resolution = public.get("resolution")
        found.append(Option(
            tool=spec.tool, title=spec.title, category=spec.category.value, params=chosen, cost_micros=quote.micros,
            formula=quote.formula, duration=duration,
            resolution=None if resolution in (None, "auto") else str(resolution).lower(),
            aspect_ratio=public.get("aspect_ratio") if public.get("aspect_ratio") != "auto" else None,
            audio=spec.output.audio and (audio_param is None or bool(public.get(audio_param)))))
    return found


# -- matching ------------------------------------------------------------------------------------

WISHES = ("budget", "audio", "duration", "resolution", "aspect_ratio")


def _active(wants: Wants) -> list[str]:
    values = {"budget": wants.budget_micros, "audio": wants.audio, "duration": wants.duration,
              "resolution": wants.resolution, "aspect_ratio": wants.aspect_ratio}
    return [w for w in WISHES if values[w] is not None]


def _meets(option: Option, wants: Wants, wish: str) -> bool:
    if wish == "budget":
        return wants.budget_micros is None or option.cost_micros <= wants.budget_micros
    if wish == "audio":
        return wants.audio is None or option.audio == wants.audio
    if wish == "duration":
        return wants.duration is None or (option.duration is not None
                                          and abs(option.duration - wants.duration) <= DURATION_TOLERANCE)
    if wish == "resolution":
        return wants.resolution is None or option.resolution == wants.resolution.lower()
    return wants.aspect_ratio is None or option.aspect_ratio == wants.aspect_ratio


def _distance(option: Option, wants: Wants, wish: str) -> float:
    """How far an option is from a wish it misses (0 when it meets it); ranks the nearest relaxations."""
    if _meets(option, wants, wish):
        return 0.0
    if wish == "budget":
        return (option.cost_micros - (wants.budget_micros or 0)) / 1_000_000
    if wish == "duration":
        return abs((option.duration or 0.0) - (wants.duration or 0.0)) if option.duration is not None else 1e9
    if wish == "resolution":
        number = lambda r: int(re.sub(r"\D", "", r or "") or 0)  # noqa: E731
        return abs(number(option.resolution) - number(wants.resolution))
    return 1.0


def _cheapest_per_tool(options: Iterable[Option], limit: int, key: Any = None) -> list[Option]:
    """The best option of each model (one line per model reads better), best first."""
    ranked = sorted(options, key=key or (lambda o: (o.cost_micros, o.tool)))
    picked: dict[str, Option] = {}
    for option in ranked:
        picked.setdefault(option.tool, option)
    return list(picked.values())[:limit]


def recommend(wants: Wants, *, specs: Iterable[ModelSpec] | None = None,
              overrides: Mapping[str, Mapping[str, int]] | None = None, limit: int = 5) -> Recommendation:
    """Options meeting every wish, cheapest first; if none, the nearest ones per dropped wish."""
    if wants.category is not None and wants.category is Category.TEXT_TO_IMAGE and (
            wants.duration is not None or wants.audio):
        raise UserError("Images have no duration or audio: leave those out, or pick a video category.")
    pool: list[Option] = []
    for spec in (specs if specs is not None else CATALOG.values()):
        if wants.category is not None and spec.category is not wants.category:
            continue
        if wants.category is None and spec.output.kind is OutputKind.IMAGES and (
                wants.duration is not None or wants.audio is not None):
            continue
        pool += options_for(spec, wants, (overrides or {}).get(spec.tool))
    active = _active(wants)
    matching = [o for o in pool if all(_meets(o, wants, w) for w in active)]
    result = Recommendation(wants, _cheapest_per_tool(matching, limit))
    if matching or not active:
        return result
    for wish in active:
        others = [w for w in active if w != wish]
        near = [o for o in pool if all(_meets(o, wants, w) for w in others)]
        result.relaxations.append(Relaxation(wish, _cheapest_per_tool(
            near, 3, key=lambda o, w=wish: (_distance(o, wants, w), o.cost_micros, o.tool))))
    return result


def wants_from(arguments: Mapping[str, Any]) -> Wants:
    """Wants from tool or CLI arguments (``category``, ``duration_seconds``, ``resolution``,
    ``aspect_ratio``, ``audio``, ``max_cost_usd``); bad values are a ``UserError``."""
    from .money import ceiling_micros

    category = arguments.get("category")
    try:
        parsed = Category(category) if category else None
    except ValueError:
        raise UserError(f"Unknown category {category!r}; categories are "
                        f"{', '.join(c.value for c in Category)}.") from None
    budget = arguments.get("max_cost_usd")
    return replace(Wants(), category=parsed, duration=arguments.get("duration_seconds"),
                   resolution=arguments.get("resolution"), aspect_ratio=arguments.get("aspect_ratio"),
                   audio=arguments.get("audio"), budget_micros=None if budget is None else ceiling_micros(budget))
