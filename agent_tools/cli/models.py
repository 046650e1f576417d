"""``videogen models``, ``schema`` and ``estimate``: what exists, its schemas, and what a run costs.

None of them touches the database or a provider: they read the catalog and the price overrides.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..catalog import CATALOG, PRICES_AS_OF, get
from ..errors import InvalidArguments
from ..money import to_usd
from ..schemas import FORMATS, export
from .output import settings_of, table
from .params import parse_tool_arguments, tool_parser


# -- models ---------------------------------------------------------------------------------

def cmd_models(args: argparse.Namespace) -> int:
    settings = settings_of(args)
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

def cmd_estimate(args: argparse.Namespace) -> int:
    spec = get(args.tool)
    parser = tool_parser("estimate", spec)
    options, arguments, problems = parse_tool_arguments(parser, spec, args.params)
    settings = settings_of(args)
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


def register(commands: Any) -> None:
    """Add models, schema and estimate to the top-level parser."""
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
