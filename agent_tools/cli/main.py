"""The ``videogen`` command for operators: look at the catalog, price a run, check the config.

Every sub-command prints data on stdout (a table, or JSON with ``--json``) and problems on stderr,
and exits non-zero on any problem, so it composes in scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, cli_admin, cli_discord, cli_mcp, cli_run
from .catalog import CATALOG, PRICES_AS_OF, get
from .cli_run import table
from .cli_params import add_model_options, collect_arguments
from .config import Settings, describe, load_settings
from .errors import InvalidArguments, UserError
from .money import to_usd
from .schemas import FORMATS, export

EXIT_USAGE = 2


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


# -- models ---------------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    settings = _settings(args)
    entries, rows = [], []
    for spec in CATALOG.values():
        quote = spec.default_quote(settings.price_overrides(spec.tool))
        rows.append([spec.tool, spec.provider.value, spec.category.value, quote.usd, spec.price_unit])
        entries.append({"tool": spec.tool, "title": spec.title, "provider": spec.provider.value,
                        "endpoint_id": spec.endpoint_id, "category": spec.category.value,
                        "output": spec.output.kind.value, "default_cost_usd": to_usd(quote.micros),
                        "default_cost_micros": quote.micros, "price": spec.price_unit,
                        "rates": {name: {"usd": to_usd(rate.micros), "unit": rate.unit}
                                  for name, rate in spec.rates.items()},
                        "when_to_use": spec.summary})
    if args.json:
        print(json.dumps({"prices_as_of": PRICES_AS_OF, "models": entries}, indent=2))
        return 0
    print(table(rows, ["TOOL", "PROVIDER", "CATEGORY", "DEFAULT RUN", "PRICE"]))
    print(f"\n{len(entries)} models; list prices as of {PRICES_AS_OF}. "
          "`videogen estimate TOOL --help` shows a model's parameters.")
    return 0


# -- schema ---------------------------------------------------------------------------------

def cmd_schema(args: argparse.Namespace) -> int:
    specs = [get(args.tool)] if args.tool else list(CATALOG.values())
    tools = export(args.format, specs)
    print(json.dumps(tools[0] if args.tool else tools, indent=2, ensure_ascii=False))
    return 0


# -- estimate -------------------------------------------------------------------------------

def _tool_parser(command: str, spec: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"videogen {command} {spec.tool}",
        description=f"{spec.title}. {spec.summary}\n\nPrice: {spec.price_unit}.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser, spec)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _parse_tool_arguments(parser: argparse.ArgumentParser, spec: Any, argv: list[str]) -> tuple[argparse.Namespace,
                                                                                                dict[str, Any], list[str]]:
    """Options → raw arguments, with unknown flags turned into problems rather than a usage exit."""
    options, unknown = parser.parse_known_args(argv)
    problems = [f"{flag}: not an option of {spec.tool}; see `{parser.prog} --help`"
                for flag in unknown if flag.startswith("-")]
    return options, collect_arguments(options, spec), problems


def cmd_estimate(args: argparse.Namespace) -> int:
    spec = get(args.tool)
    parser = _tool_parser("estimate", spec)
    options, arguments, problems = _parse_tool_arguments(parser, spec, args.params)
    settings = _settings(args)
    try:
        params, missing = spec.validate_for_pricing(arguments)
    except InvalidArguments as exc:
        raise InvalidArguments(spec.tool, problems + exc.problems) from None
    if problems:
        raise InvalidArguments(spec.tool, problems)
    quote = spec.price(params, settings.price_overrides(spec.tool))
    public = {k: v for k, v in params.public_params().items() if k not in missing}
    if options.json:
        print(json.dumps({"tool": spec.tool, "params": public, "cost_usd": to_usd(quote.micros),
                          "cost_micros": quote.micros, "formula": quote.formula}, indent=2, ensure_ascii=False))
        return 0
    overridden = " (operator override)" if settings.price_overrides(spec.tool) else ""
    print(f"{spec.tool}: {quote.usd}{overridden}")
    print(f"  {quote.formula}")
    shown = ", ".join(f"{k}={_short(v)}" for k, v in public.items())
    print(f"  parameters: {shown}")
    if missing:
        print(f"  (to run it you will also need: {', '.join(missing)})")
    print(f"  list prices as of {PRICES_AS_OF} ({spec.price_source}); "
          f"override with [prices.{spec.tool}] in the config file.")
    return 0


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- config ---------------------------------------------------------------------------------

def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    origin = settings.origin
    if origin.file:
        print(f"config file: {origin.file} (found via {origin.how_found})")
    else:
        print("config file: none; looked in " + ", ".join(str(p) for p in origin.searched) + "; using defaults")
    rows = [[key, value, source] for key, value, source in describe(settings)]
    print(table(rows, ["SETTING", "VALUE", "FROM"]))
    missing = [name for name, key in (("fal", settings.fal.key), ("wavespeed", settings.wavespeed.key)) if key is None]
    if missing:
        print(f"\nnote: no API key for {', '.join(missing)}; generations on those providers will be refused "
              "(set FAL_KEY / WAVESPEED_API_KEY or the key in the file).")
    return 0


# -- wiring ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videogen",
        description="Generate videos and images with hosted models (fal.ai, WaveSpeed) within quotas.")
    parser.add_argument("--version", action="version", version=f"videogen {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $VIDEOGEN_CONFIG, ./videogen.toml, then the user config dir)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    models = commands.add_parser("models", help="list every model with its price",
                                 description="List every model: tool name, provider, category and price.")
    models.add_argument("--json", action="store_true", help="print JSON for scripts")
    models.set_defaults(func=cmd_models)

    schema = commands.add_parser("schema", help="print function schemas (MCP, OpenAI or Anthropic)",
                                 description="Print tool definitions for LLM function calling.")
    schema.add_argument("tool", nargs="?", help="one tool (default: all)")
    schema.add_argument("--format", choices=FORMATS, default="mcp", help="tool format (default: mcp)")
    schema.set_defaults(func=cmd_schema)

    estimate = commands.add_parser(
        "estimate", help="price a run without running it",
        description="Price a run. `videogen estimate TOOL --help` lists that model's parameters.",
        epilog="tools: " + ", ".join(CATALOG))
    estimate.add_argument("tool", metavar="TOOL", help="a tool name from `videogen models`")
    estimate.add_argument("params", nargs=argparse.REMAINDER, help="the model's parameters, e.g. --duration 10")
    estimate.set_defaults(func=cmd_estimate)

    cli_run.register(commands)
    cli_admin.register(commands)
    cli_mcp.register(commands)
    cli_discord.register(commands)

    config = commands.add_parser("config", help="inspect the configuration",
                                 description="Inspect the configuration.")
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = config_commands.add_parser("check", help="show every setting and where it came from",
                                       description="Show every setting, where it came from; secrets masked.")
    check.set_defaults(func=cmd_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `videogen schema | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
