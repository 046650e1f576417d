"""A model's parameters as command-line options, generated from its Input schema.

``videogen estimate pika_text_to_video --duration 10 --resolution 1080p`` works because every
property of the catalog's schema becomes an option here; nothing about a model is written twice.
Values are converted by the schema's type only far enough to hand them to pydantic, which then
reports every problem at once, with the allowed values, instead of argparse stopping at the first.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..catalog import ModelSpec
from ..catalog.spec import describe_constraints
from ..errors import InvalidArguments

DEST_PREFIX = "param__"


def tool_parser(command: str, spec: ModelSpec) -> argparse.ArgumentParser:
    """The parser for ``videogen COMMAND TOOL …``: the model's options plus ``--json``."""
    parser = argparse.ArgumentParser(
        prog=f"videogen {command} {spec.tool}",
        description=f"{spec.title}. {spec.summary}\n\nPrice: {spec.price_unit}.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser, spec)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def parse_tool_arguments(parser: argparse.ArgumentParser, spec: ModelSpec,
                         argv: list[str]) -> tuple[argparse.Namespace, dict[str, Any], list[str]]:
    """Options → raw arguments, with unknown flags turned into problems rather than a usage exit, so
    they are reported together with the validation problems."""
    options, unknown = parser.parse_known_args(argv)
    problems = [f"{flag}: not an option of {spec.tool}; see `{parser.prog} --help`"
                for flag in unknown if flag.startswith("-")]
    return options, collect_arguments(options, spec), problems


def option_names(name: str) -> list[str]:
    """``aspect_ratio`` → ``--aspect-ratio`` (and ``--aspect_ratio``, as people also type it)."""
    dashed = "--" + name.replace("_", "-")
    return [dashed] if dashed == f"--{name}" else [dashed, f"--{name}"]


def add_model_options(parser: argparse.ArgumentParser, spec: ModelSpec) -> None:
    """One option per Input property, with its description, allowed values and default in --help."""
    group = parser.add_argument_group(f"{spec.tool} parameters")
    schema = spec.schema()
    required = set(schema.get("required", ()))
    media = spec.media_fields()
    for name, prop in schema["properties"].items():
        help_text = prop.get("description", "").rstrip(".")
        constraint = describe_constraints(prop)
        help_text = f"{help_text}. {constraint[0].upper()}{constraint[1:]}." if help_text else constraint
        if name in media:
            help_text += " A URL or a local file path."
        if name in required:
            help_text += " Required."
        kwargs: dict[str, Any] = {"dest": DEST_PREFIX + name, "default": argparse.SUPPRESS, "help": help_text}
        if prop.get("type") == "boolean":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif prop.get("type") == "array":
            kwargs.update(nargs="+", metavar="VALUE")
        elif "enum" in prop:
            kwargs["metavar"] = "{" + ",".join(str(v) for v in prop["enum"]) + "}"
        else:
            kwargs["metavar"] = name.upper()
        group.add_argument(*option_names(name), **kwargs)
    parser.add_argument("--args-json", metavar="JSON", default=None,
                        help="any parameters as a JSON object; options given separately take precedence")


def collect_arguments(ns: argparse.Namespace, spec: ModelSpec) -> dict[str, Any]:
    """The raw arguments from parsed options (and ``--args-json``), typed by the schema."""
    arguments: dict[str, Any] = {}
    if getattr(ns, "args_json", None):
        try:
            loaded = json.loads(ns.args_json)
        except json.JSONDecodeError as exc:
            raise InvalidArguments(spec.tool, [f"--args-json is not valid JSON: {exc.msg} at position {exc.pos}"]) from None
        except (ValueError, RecursionError) as exc:  # a number too long to read, or nesting past the parser's depth
            reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
            raise InvalidArguments(spec.tool, [f"--args-json cannot be read: {reason}"]) from None
        if not isinstance(loaded, dict):
            raise InvalidArguments(spec.tool, ["--args-json must be a JSON object, like '{\"duration\": 10}'"])
        arguments.update(loaded)
    props = spec.schema()["properties"]
    for key, value in vars(ns).items():
        if key.startswith(DEST_PREFIX):
            name = key[len(DEST_PREFIX):]
            arguments[name] = convert(value, props[name])
    return arguments


def convert(value: Any, prop: dict[str, Any]) -> Any:
    """A command-line string to the JSON type its property expects; unconvertible text passes
    through unchanged so validation can say what was wrong with it."""
    if isinstance(value, list):
        return [convert(v, prop.get("items", {})) for v in value]
    if not isinstance(value, str):
        return value
    types = _types(prop)
    if types == {"string"}:
        return value
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):  # not JSON, or past the parser's limits: validation says what is wrong
        return value
    if isinstance(parsed, bool) and "boolean" not in types:
        return value
    if isinstance(parsed, (int, float)) and not types & {"integer", "number"} and "string" in types:
        return value  # "5" for a string enum such as hailuo's duration stays a string
    return parsed


def _types(prop: dict[str, Any]) -> set[str]:
    if "anyOf" in prop:
        return set().union(*(_types(p) for p in prop["anyOf"]))
    if "enum" in prop:
        return {_json_type(v) for v in prop["enum"]}
    declared = prop.get("type", "string")
    return set(declared) if isinstance(declared, list) else {declared}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
