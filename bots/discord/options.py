"""A model's JSON schema → Discord options, and Discord's values → the model's arguments.

Nothing here is written per model: every option comes from ``spec.schema()`` and
``spec.media_fields()``, so a new catalog entry becomes a subcommand with no code.

- ``enum`` → choices (integers stay integers); a one-value enum is not offered (nothing to choose).
- ``minimum``/``maximum`` (and exclusive bounds) → ``min_value``/``max_value``; ``maxLength`` → ``max_length``.
- an image field → an attachment option plus an alternative URL option; an image list → numbered
  attachments ``image_1``… plus one option of space-separated URLs.
- a union of presets and ``{width, height}`` → the presets as choices plus one integer option per
  dimension.
- defaults go into the description ("(default 16:9)"): Discord options have no default field.
- secrets (``writeOnly``, e.g. Sora's ``api_key``) are never offered in a chat.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from agent_tools.catalog import ModelSpec
from agent_tools.media import MAX_INPUT_BYTES, format_size

MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_DESCRIPTION = 100
MAX_STRING = 6000
MAX_INT = 2**53 - 1
LIST_SLOTS = 4
"""Attachment slots for an image list without ``maxItems`` (more fit in the URL option)."""

HIDDEN_FIELDS = {"sync_mode": "returns the image inline, which cannot be kept or posted"}
"""Fields a chat user gets no option for, with the reason (they keep their defaults). The provider
safety switches (``spec.safety_fields()``) are left out too: ``[discord] provider_switches`` sets them."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class OptionPlan:
    """One Discord option and where its value goes in the model's arguments.

    ``role``: ``value`` (the field itself), ``json`` (a field with no Discord type, typed as JSON),
    ``attachment``/``url`` (an image field), ``item``/``urls`` (an image list), ``preset``/``part``
    (a preset-or-dimensions union; ``part`` names the dimension).
    """

    name: str
    kind: str  # "string" | "integer" | "number" | "boolean" | "attachment"
    field: str
    role: str = "value"
    part: str | None = None
    required: bool = False
    text: str = ""
    suffix: str = ""
    min_value: int | float | None = None
    max_value: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[tuple[str, Any], ...] = ()

    def description(self, limit: int = MAX_DESCRIPTION) -> str:
        """The text, shortened at a word to fit ``limit`` with the suffix (the default) kept whole."""
        suffix = f" {self.suffix}" if self.suffix else ""
        return shorten(self.text, max(limit - len(suffix), 12)) + suffix


@dataclass(frozen=True)
class ToolPlan:
    """Every option of one model's subcommand, plus values the user never has to choose."""

    spec: ModelSpec
    options: tuple[OptionPlan, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()

    def chars(self, limit: int) -> int:
        """Characters this subcommand adds to its command's 8,000 (see ``payloads.command_chars``)."""
        total = 0
        for option in self.options:
            total += len(option.name) + len(option.description(limit))
            total += sum(len(name) + len(str(value)) for name, value in option.choices)
        return total


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, ending in … when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-—") + "…"


def humanize(name: str) -> str:
    return name.replace("_", " ").capitalize()


def show_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return "empty"
    text = value if isinstance(value, str) else json.dumps(value)
    return shorten(text, 32)


def _default_suffix(prop: Mapping[str, Any]) -> str:
    return f"(default {show_default(prop['default'])})" if "default" in prop else ""


def _bounds(prop: Mapping[str, Any], integer: bool) -> tuple[Any, Any]:
    low = prop.get("minimum")
    if low is None and "exclusiveMinimum" in prop:
        low = prop["exclusiveMinimum"] + 1 if integer else prop["exclusiveMinimum"]
    high = prop.get("maximum")
    if high is None and "exclusiveMaximum" in prop:
        high = prop["exclusiveMaximum"] - 1 if integer else prop["exclusiveMaximum"]
    clamp = (lambda v: None if v is None else max(-MAX_INT, min(MAX_INT, v)))
    return clamp(low), clamp(high)


def _enum_kind(values: list[Any]) -> str:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


def _choices(values: list[Any], kind: str) -> tuple[tuple[str, Any], ...]:
    """Choices for an enum; a mixed enum (``["129", 129]``) becomes distinct strings."""
    seen: dict[str, Any] = {}
    for value in values:
        shown = str(value)
        if shown not in seen:
            seen[shown] = value if kind != "string" else shown
    return tuple(seen.items())


def value_option(name: str, prop: Mapping[str, Any], required: bool, short: str | None = None) -> OptionPlan | None:
    """The option for a plain field, or None for a one-value enum (nothing to choose)."""
    text = short or prop.get("description") or humanize(name)
    base = OptionPlan(name=name, kind="string", field=name, required=required and "default" not in prop,
                      text=text, suffix=_default_suffix(prop))
    if "enum" in prop:
        values = list(prop["enum"])
        if len(_choices(values, "string")) == 1:
            return None
        kind = _enum_kind(values)
        if len(values) > MAX_CHOICES:  # too many to list: a plain string, checked by the model's schema
            return replace(base, kind="string")
        return replace(base, kind=kind, choices=_choices(values, kind))
    kind = prop.get("type", "string")
    if kind in ("integer", "number"):
        low, high = _bounds(prop, kind == "integer")
        return replace(base, kind=kind, min_value=low, max_value=high)
    if kind == "boolean":
        return replace(base, kind="boolean")
    if kind == "string":
        max_length = prop.get("maxLength")
        return replace(base, min_length=prop.get("minLength"),
                       max_length=None if max_length is None else min(max_length, MAX_STRING))
    # arrays and objects other than images have no Discord equivalent: take JSON text
    return replace(base, kind="string", role="json", text=f"{text} (JSON)")


def _url_name(name: str, base: str, taken: set[str]) -> str:
    """``image_url`` keeps its own name for the URL option; a field named ``image`` gets ``image_url``."""
    candidate = name if name != base else f"{base}_url"
    return candidate if candidate == name or candidate not in taken else f"{base}_link"


_URL_OF = re.compile(r"^(optional\s+)?(the\s+)?urls?\s+of\s+(the\s+)?", re.IGNORECASE)


def _image_text(text: str | None, base: str) -> str:
    """``URL of the image input`` describes the field; for an attachment say ``The image input``."""
    if not text:
        return humanize(base)
    cleaned = _URL_OF.sub("", text)
    return ("The " + cleaned) if cleaned != text else text


def media_options(name: str, prop: Mapping[str, Any], required: bool, taken: set[str],
                  slots: int = LIST_SLOTS, short: str | None = None) -> list[OptionPlan]:
    """An image field → attachment + URL; an image list → numbered attachments + URLs."""
    if prop.get("type") == "array":
        base = name.removesuffix("_urls").removesuffix("s")
        text = short or _image_text(prop.get("description"), base)
        count = min(prop.get("maxItems") or slots, slots)
        need = prop.get("minItems", 1 if required else 0)
        urls = _url_name(name, base, taken)
        plans = [OptionPlan(name=f"{base}_1", kind="attachment", field=name, role="item", part="1", text=text,
                            suffix=f"(need {need}+, or use {urls})" if need else "(optional)")]
        plans += [OptionPlan(name=f"{base}_{i}", kind="attachment", field=name, role="item", part=str(i),
                             text=f"{humanize(base)} {i}, like {base}_1", suffix="(optional)")
                  for i in range(2, count + 1)]
        plans.append(OptionPlan(name=urls, kind="string", field=name, role="urls",
                                text=f"Image links (https://, space-separated) instead of or besides {base}_1…"))
        return plans
    base = name.removesuffix("_url")
    url = _url_name(name, base, taken)
    hint = f"(or give {url})" if required else "(optional)"
    return [OptionPlan(name=base, kind="attachment", field=name, role="attachment",
                       text=short or _image_text(prop.get("description"), base), suffix=hint),
            OptionPlan(name=url, kind="string", field=name, role="url", text=f"An https:// link instead of attaching {base}")]


def union_options(name: str, prop: Mapping[str, Any], required: bool, taken: set[str],
                  short: str | None = None) -> list[OptionPlan]:
    """A preset-or-dimensions union (``image_size``) → the presets as choices + one option per dimension."""
    branches = prop.get("anyOf", [])
    presets = next((b for b in branches if "enum" in b), None)
    sized = next((b for b in branches if b.get("type") == "object" and b.get("properties")), None)
    if presets is None or sized is None:
        return [OptionPlan(name=name, kind="string", field=name, role="json",
                           required=required and "default" not in prop,
                           text=f"{prop.get('description') or humanize(name)} (JSON)", suffix=_default_suffix(prop))]
    text = short or shorten((prop.get("description") or humanize(name)).split(":")[0], 60)
    kind = _enum_kind(list(presets["enum"]))
    plans = [OptionPlan(name=name, kind=kind, field=name, role="preset", text=text,
                        suffix=_default_suffix(prop), choices=_choices(list(presets["enum"]), kind))]
    for part, sub in sized["properties"].items():
        option = part if part not in taken else f"{name}_{part}"
        low, high = _bounds(sub, sub.get("type") == "integer")
        plans.append(OptionPlan(
            name=option, kind=sub.get("type", "integer"), field=name, role="part", part=part,
            text=f"{humanize(part)} in pixels, instead of {name}",
            suffix=f"(default {show_default(sub['default'])})" if "default" in sub else "",
            min_value=low, max_value=high))
    return plans


def plan_tool(spec: ModelSpec) -> ToolPlan:
    """Every option of ``spec``'s subcommand: required ones first, then the input image, then the
    settings in schema order, then the link alternatives to attachments."""
    schema = spec.schema()
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    media = spec.media_fields()
    taken = set(props)
    options: list[OptionPlan] = []
    fixed: dict[str, Any] = {}
    left_out: list[str] = []
    operator = set(spec.safety_fields())
    for name, prop in props.items():
        if prop.get("writeOnly") or name in HIDDEN_FIELDS or name in operator:
            left_out.append(name)
            continue
        short = spec.short_description(name)
        if name in media:
            new = media_options(name, prop, name in required, taken, short=short)
        elif "anyOf" in prop:
            new = union_options(name, prop, name in required, taken, short=short)
        else:
            single = value_option(name, prop, name in required, short)
            if single is None:
                if name in required and "default" not in prop:
                    fixed[name] = prop["enum"][0]
                continue
            new = [single]
        taken.update(o.name for o in new)
        options.extend(new)
    options = _fit_option_count(options, left_out)
    for option in options:
        if not IDENT.match(option.name):
            raise ValueError(f"{spec.tool}: option {option.name!r} is not a lowercase identifier of ≤ 32 characters")
    options.sort(key=_position)
    return ToolPlan(spec, tuple(options), fixed, tuple(left_out))


def _position(option: OptionPlan) -> int:
    """Required first, then the picture(s) to start from, then settings, then links instead of pictures."""
    if option.required:
        return 0
    if option.role in ("attachment", "item"):
        return 1
    if option.role in ("url", "urls"):
        return 3
    return 2


def _fit_option_count(options: list[OptionPlan], left_out: list[str]) -> list[OptionPlan]:
    """At most 25 options: fewer image-list slots first, then the last optional plain fields."""
    while len(options) > MAX_OPTIONS:
        items = [o for o in options if o.role == "item"]
        if len(items) > 1:
            options.remove(items[-1])
            continue
        victim = next((o for o in reversed(options) if not o.required and o.role == "value"), None)
        if victim is None:
            raise ValueError("more than 25 required or image options: this model needs a different layout")
        options.remove(victim)
        left_out.append(victim.field)
    return options


# -- Discord values → model arguments ---------------------------------------------------------

Problems = list[tuple[str, str]]
"""(schema field, sentence) pairs: the field lets the caller drop the schema's own complaint about it."""


def _check_attachment(field: str, option: str, attachment: Any, problems: Problems) -> str | None:
    ctype = (getattr(attachment, "content_type", None) or "").split(";")[0]
    filename = getattr(attachment, "filename", "") or ""
    if not (ctype.startswith("image/") or filename.lower().endswith(IMAGE_EXTENSIONS)):
        problems.append((field, f"{option}: {filename or 'the attachment'} is not an image (PNG, JPEG, WebP, GIF or "
                                "BMP); attach an image instead"))
        return None
    size = getattr(attachment, "size", 0) or 0
    if size > MAX_INPUT_BYTES:
        problems.append((field, f"{option}: {filename} is {format_size(size)}, over the "
                                f"{format_size(MAX_INPUT_BYTES)} limit for input images; downscale it or attach a "
                                "smaller one"))
        return None
    return attachment.url


def _check_url(field: str, option: str, value: str, problems: Problems) -> str | None:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append((field, f"{option}: {shorten(value, 60)!r} is not an http(s):// URL; paste an image link or "
                                "attach the image instead"))
        return None
    return value.strip()


def collect_arguments(plan: ToolPlan, values: Mapping[str, Any]) -> tuple[dict[str, Any], Problems]:
    """The model's arguments from Discord's values (``None`` = not given), and every problem found.

    Range and choice checks are left to the model's own validation (Discord's client enforces them,
    but nothing on Discord's side re-checks them); here only what the schema cannot see is checked:
    an image given twice or not at all, a non-image attachment, an oversized file, a bad URL.
    """
    arguments: dict[str, Any] = dict(plan.fixed)
    problems: Problems = []
    by_field: dict[str, list[OptionPlan]] = {}
    for option in plan.options:
        by_field.setdefault(option.field, []).append(option)
    schema = plan.spec.schema()
    required = set(schema.get("required", ()))
    for name, group in by_field.items():
        given = [(o, values.get(o.name)) for o in group if values.get(o.name) is not None]
        roles = {o.role for o in group}
        if roles <= {"value", "json"}:
            if given:
                option, value = given[0]
                arguments[name] = _parse_json(name, option.name, value, problems) if option.role == "json" else value
        elif roles <= {"attachment", "url"}:
            if len(given) > 1:
                problems.append((name, f"{group[0].name}: give either an attachment or {group[1].name}, not both"))
            elif given:
                option, value = given[0]
                url = (_check_attachment(name, option.name, value, problems) if option.role == "attachment"
                       else _check_url(name, option.name, value, problems))
                if url:
                    arguments[name] = url
            elif name in required:
                problems.append((name, f"{group[0].name}: required — attach an image or give {group[1].name}"))
        elif roles <= {"item", "urls"}:
            urls: list[str] = []
            for option, value in given:
                if option.role == "item":
                    url = _check_attachment(name, option.name, value, problems)
                    urls += [url] if url else []
                else:
                    urls += [u for part in value.replace(",", " ").split()
                             if (u := _check_url(name, option.name, part, problems))]
            if urls:
                arguments[name] = urls
            elif name in required and not given:
                problems.append((name, f"{group[0].name}: required — attach at least one image or give "
                                       f"{group[-1].name}"))
        else:
            _collect_union(name, group, given, schema["properties"][name], arguments, problems)
    return arguments, problems


def _collect_union(name: str, group: list[OptionPlan], given: list[tuple[OptionPlan, Any]],
                   prop: Mapping[str, Any], arguments: dict[str, Any], problems: Problems) -> None:
    preset = next((v for o, v in given if o.role == "preset"), None)
    parts = {o.part: v for o, v in given if o.role == "part"}
    if preset is not None and parts:
        names = " and ".join(o.name for o in group if o.role == "part")
        problems.append((name, f"{name}: choose a preset or give {names}, not both"))
    elif parts:
        sized = next(b for b in prop["anyOf"] if b.get("type") == "object")
        arguments[name] = {part: parts.get(part, sub.get("default")) for part, sub in sized["properties"].items()
                           if part in parts or "default" in sub}
    elif preset is not None:
        arguments[name] = preset


def _parse_json(field: str, option: str, value: str, problems: Problems) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        problems.append((field, f"{option}: not valid JSON"))
        return value
