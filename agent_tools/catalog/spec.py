"""What a model endpoint is: its parameters, its output, its price and how to prompt it.

A ``ModelSpec`` is the single source of truth for one provider endpoint. Its pydantic ``Input``
model is the only place a parameter is described; MCP tool schemas, OpenAI/Anthropic exports,
CLI options and Discord options are all derived from it (see ``schema()``), so they cannot drift.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from ..errors import InvalidArguments
from ..inputs import data_uri_digest, shape_problems
from ..money import format_usd
from .labels import SAFETY_FIELDS, SHORT


class Provider(StrEnum):
    FAL = "fal"
    WAVESPEED = "wavespeed"


class Category(StrEnum):
    TEXT_TO_VIDEO = "text-to-video"
    IMAGE_TO_VIDEO = "image-to-video"
    REFERENCE_TO_VIDEO = "reference-to-video"
    FIRST_LAST_FRAME_TO_VIDEO = "first-last-frame-to-video"
    TEXT_TO_IMAGE = "text-to-image"


class OutputKind(StrEnum):
    VIDEO = "video"
    IMAGES = "images"


class MediaInput:
    """Marks a field (``Annotated[str, MediaInput("image")]``) as a media input.

    Surfaces use it to accept a local file or an attachment and upload it before submitting;
    the JSON schema stays a plain string so the provider's contract is unchanged.
    """

    def __init__(self, kind: str = "image") -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"MediaInput({self.kind!r})"


class ModelInput(BaseModel):
    """Base of every endpoint's ``Input``: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)

    def provider_payload(self) -> dict[str, Any]:
        """The JSON body for the provider: unset optionals omitted, secrets revealed."""
        data = self.model_dump(mode="python", exclude_none=True)
        return {k: (v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in data.items()}

    def public_params(self) -> dict[str, Any]:
        """Parameters safe to store, log and show: secrets masked, defaults filled in."""
        data = self.model_dump(mode="json", exclude_none=True)
        for name, value in self:
            if isinstance(value, SecretStr):
                data[name] = "**********"
            elif isinstance(value, str) and value.startswith("data:"):
                data[name] = data_uri_digest(value)
            elif isinstance(value, list) and any(isinstance(v, str) and v.startswith("data:") for v in value):
                data[name] = [data_uri_digest(v) if isinstance(v, str) and v.startswith("data:") else v for v in value]
        return data


@dataclass(frozen=True)
class Rate:
    """One priced unit an operator can override in config, e.g. ``per_second_audio``."""

    micros: int
    unit: str


@dataclass(frozen=True)
class Quote:
    """A price and the arithmetic behind it, in words a person can check."""

    micros: int
    formula: str

    @property
    def usd(self) -> str:
        return format_usd(self.micros)


PriceFn = Callable[[Any, Mapping[str, int]], Quote]


@dataclass(frozen=True)
class OutputSpec:
    """What a finished job carries: a video or a list of images, and the result's fields."""

    kind: OutputKind
    fields: Mapping[str, str]
    audio: bool = False
    """The video has a soundtrack (speech, effects, music) — unless a boolean ``*audio*`` parameter
    turns it off. Read by the recommender; the schema alone cannot say it."""


@dataclass(frozen=True)
class ModelSpec:
    tool: str
    title: str
    provider: Provider
    endpoint_id: str
    category: Category
    Input: type[ModelInput]
    output: OutputSpec
    rates: Mapping[str, Rate]
    pricer: PriceFn
    price_unit: str
    price_source: str
    summary: str
    prompt_guide: str
    notes: tuple[str, ...] = field(default=())
    short: Mapping[str, str] = field(default_factory=dict)
    """Field → a few plain words for chat options, where ``labels.SHORT``'s text does not fit this model."""

    # -- validation -------------------------------------------------------------------------
    def validate(self, arguments: Mapping[str, Any]) -> ModelInput:
        """Arguments → a validated Input, or ``InvalidArguments`` naming every problem."""
        if not isinstance(arguments, Mapping):
            raise InvalidArguments(self.tool, [f"arguments must be an object, got {type(arguments).__name__}"])
        problems = shape_problems(dict(arguments))
        if problems:
            raise InvalidArguments(self.tool, problems)
        try:
            return self.Input.model_validate(dict(arguments))
        except ValidationError as exc:
            raise InvalidArguments(self.tool, describe_problems(self, exc)) from None

    def validate_for_pricing(self, arguments: Mapping[str, Any]) -> tuple[ModelInput, list[str]]:
        """Like ``validate``, but required fields may be missing: they never change the price.

        Returns the Input (missing fields hold inert placeholders) and the names that were missing,
        so ``estimate`` can price ``--duration 10`` without a prompt yet still reject a bad value.
        """
        schema = self.schema()
        placeholders = {"string": "", "array": [""], "integer": 0, "number": 0, "boolean": False}
        missing = [n for n in schema.get("required", ()) if n not in arguments]
        filled = dict(arguments)
        for name in missing:
            filled[name] = placeholders.get(schema["properties"][name].get("type", "string"), "")
        return self.validate(filled), missing

    # -- pricing ----------------------------------------------------------------------------
    def price(self, params: ModelInput, overrides: Mapping[str, int] | None = None) -> Quote:
        """The cost of one run with these parameters, in micro-dollars, with the formula."""
        rates = {name: rate.micros for name, rate in self.rates.items()}
        if overrides:
            rates.update(overrides)
        return self.pricer(params, rates)

    def default_quote(self, overrides: Mapping[str, int] | None = None) -> Quote:
        """What a run with only the required fields costs (required fields never affect price)."""
        return self.price(self.Input.model_construct(), overrides)

    # -- schema -----------------------------------------------------------------------------
    def schema(self) -> dict[str, Any]:
        """The Input model as a self-contained JSON Schema 2020-12 object (no ``$ref``, no ``$schema``)."""
        return copy.deepcopy(_schema_cache(self.Input))

    @property
    def description(self) -> str:
        """What an LLM reads to decide when to use this tool and how to prompt it."""
        parts = [self.summary.strip(), "How to prompt: " + self.prompt_guide.strip()]
        parts.extend(n.strip() for n in self.notes)
        parts.append(f"Price: {self.price_unit}; a default run costs {self.default_quote().usd}.")
        return "\n\n".join(parts)

    def short_description(self, name: str) -> str | None:
        """A few plain words for a field, for chat options (None: no short text, use the schema's)."""
        return self.short.get(name) or SHORT.get(name)

    def safety_fields(self) -> list[str]:
        """This model's provider safety switches (``labels.SAFETY_FIELDS``): the operator's, not a user's."""
        return [name for name in self.Input.model_fields if name in SAFETY_FIELDS]

    def media_fields(self) -> dict[str, str]:
        """Field name → media kind for inputs that take an image, or a list of images."""
        found: dict[str, str] = {}
        for name, info in self.Input.model_fields.items():
            kind = _media_kind(info.metadata) or _media_kind_in(info.annotation)
            if kind:
                found[name] = kind
        return found


def _media_kind(metadata: Any) -> str | None:
    return next((m.kind for m in metadata if isinstance(m, MediaInput)), None)


def _media_kind_in(annotation: Any) -> str | None:
    """Find a ``MediaInput`` marker anywhere inside ``list[Annotated[str, MediaInput()]] | None``."""
    if get_origin(annotation) is Annotated:
        return _media_kind(get_args(annotation)[1:]) or _media_kind_in(get_args(annotation)[0])
    return next((k for arg in get_args(annotation) if (k := _media_kind_in(arg))), None)


class _CleanSchema(GenerateJsonSchema):
    """Schemas for tools, not for round-tripping: ``int | None = None`` is just an optional int."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> dict[str, Any]:
        return self.generate_inner(schema["schema"])

    def literal_schema(self, schema: core_schema.LiteralSchema) -> dict[str, Any]:
        # A one-value Literal is still a choice (the seeds list it as "Options: 8s"): keep it an
        # enum so every surface renders it like the others.
        result = super().literal_schema(schema)
        if "const" in result:
            result["enum"] = [result.pop("const")]
        return result

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        result = super().default_schema(schema)
        if result.get("default", object()) is None:
            result.pop("default")
        return result


_SCHEMAS: dict[type[BaseModel], dict[str, Any]] = {}


def _schema_cache(model: type[BaseModel]) -> dict[str, Any]:
    if model not in _SCHEMAS:
        raw = model.model_json_schema(schema_generator=_CleanSchema, mode="validation")
        defs = raw.pop("$defs", {})
        schema = _strip_titles(_inline_refs(raw, defs))
        schema.pop("description", None)
        _SCHEMAS[model] = schema
    return _SCHEMAS[model]


def _inline_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    """Replace every ``$ref`` to ``#/$defs/X`` by the definition itself.

    Function-calling hosts handle ``$ref`` unevenly; an inlined schema reads the same everywhere.
    """
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            merged = {**_inline_refs(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline_refs(merged, defs)
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not")


def _strip_titles(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated ``title`` keywords (``"Aspect Ratio"``): noise for an LLM."""
    schema.pop("title", None)
    for name, sub in schema.get("properties", {}).items():
        schema["properties"][name] = _strip_titles(sub)
    for key in _SUBSCHEMA_LISTS:
        if key in schema:
            schema[key] = [_strip_titles(s) for s in schema[key]]
    for key in _SUBSCHEMA_ONE:
        if isinstance(schema.get(key), dict):
            schema[key] = _strip_titles(schema[key])
    return schema


# -- turning pydantic errors into sentences -------------------------------------------------

def describe_constraints(prop: Mapping[str, Any]) -> str:
    """``one of 5, 10 (default 5)`` / ``an integer from 10 to 30 (default 30)`` for a property."""
    bits: list[str] = []
    if "enum" in prop:
        bits.append("one of " + ", ".join(_show(v) for v in prop["enum"]))
    elif "anyOf" in prop:
        bits.append(" or ".join(describe_constraints(p) for p in prop["anyOf"]))
    else:
        kind = {"integer": "an integer", "number": "a number", "string": "a string",
                "boolean": "true or false", "array": "a list", "object": "an object"}.get(prop.get("type", ""), "a value")
        bounds = [f"{word} {_show(prop[key])}" for key, word in (
            ("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")) if key in prop]
        if "minimum" in prop and "maximum" in prop:
            kind += f" from {_show(prop['minimum'])} to {_show(prop['maximum'])}"
        elif bounds:
            kind += " " + " and ".join(bounds)
        if prop.get("type") == "object" and "properties" in prop:
            kind += " {" + ", ".join(f"{k}: {describe_constraints(v)}" for k, v in prop["properties"].items()) + "}"
        if prop.get("type") == "array":
            if "minItems" in prop:
                kind += f" of at least {prop['minItems']} item(s)"
            if "maxItems" in prop:
                kind += f" of at most {prop['maxItems']} item(s)"
        if "maxLength" in prop:
            kind += f" of at most {prop['maxLength']} characters"
        bits.append(kind)
    if "default" in prop:
        bits.append(f"(default {_show(prop['default'])})")
    return " ".join(bits)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _is_field_step(step: Any) -> bool:
    """Drop pydantic's union-branch tags (``literal['a','b']``, ``ImageSize``) from an error path."""
    return isinstance(step, int) or (isinstance(step, str) and step.isidentifier() and not step[:1].isupper())


def describe_problems(spec: ModelSpec, exc: ValidationError) -> list[str]:
    """One sentence per problem, naming the field, what was given and what is allowed."""
    props = spec.schema().get("properties", {})
    problems: list[str] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = err.get("loc", ())
        name = str(loc[0]) if loc else ""
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(props)
            problems.append(f"{name}: not a parameter of {spec.tool}; its parameters are {allowed}")
            continue
        if err["type"] == "missing":
            problems.append(f"{name}: required — {props.get(name, {}).get('description', 'missing')}".rstrip())
            continue
        if name in seen:  # a union reports one error per branch; one sentence per field is enough
            continue
        seen.add(name)
        given = err.get("input")
        shown = "a secret value" if name in props and props[name].get("writeOnly") else _show(given)
        where = ".".join(str(p) for p in loc if _is_field_step(p))
        expected = describe_constraints(props[name]) if name in props else err["msg"]
        problems.append(f"{where}: {shown} is not allowed; expected {expected}")
    return problems or [str(exc)]
