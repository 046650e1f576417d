"""``videogen recommend``: which models and parameters give what you want, cheapest first.

    videogen recommend --duration 6 --audio --budget 1
    videogen recommend --category text-to-video --resolution 1080p --json

The answer is solved from the catalog's schemas and price formulas (``agent_tools.recommend``), with
the operator's price overrides; nothing is submitted. When nothing fits, it lists the nearest
options with one wish dropped at a time.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..catalog import CATALOG, Category
from ..errors import UserError
from ..money import format_usd
from .output import settings_of, table


def cmd_recommend(args: argparse.Namespace) -> int:
    from ..recommend import recommend, wants_from  # the solver loads only when asked

    settings = settings_of(args)
    if args.budget is not None and args.budget < 0:
        raise UserError("--budget must be a dollar amount of 0 or more, e.g. 1 or 2.50.")
    if args.duration is not None and args.duration <= 0:
        raise UserError("--duration must be a number of seconds above 0, e.g. 6.")
    wants = wants_from({"category": args.category, "duration_seconds": args.duration, "resolution": args.resolution,
                        "aspect_ratio": args.aspect_ratio, "audio": args.audio, "max_cost_usd": args.budget})
    found = recommend(wants, overrides={t: settings.price_overrides(t) for t in CATALOG}, limit=args.limit)
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
        return 0 if found.options else 1
    if not found.options:
        print(found.text())
        return 1
    rows = [[o.tool, _seconds(o.duration), o.resolution or "-", "yes" if o.audio else "no",
             format_usd(o.cost_micros), _arguments(o.params)] for o in found.options]
    print(table(rows, ["TOOL", "LENGTH", "RESOLUTION", "AUDIO", "COST", "ARGUMENTS"]))
    print(f"\n{len(found.options)} option(s) for {wants.describe()}, cheapest first. "
          "`videogen generate TOOL --help` shows the rest of a model's parameters.")
    return 0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def _arguments(params: dict[str, Any]) -> str:
    """The parameters as ``videogen generate`` options (booleans as ``--x`` / ``--no-x``)."""
    options = []
    for name, value in params.items():
        flag = name.replace("_", "-")
        options.append((f"--{flag}" if value else f"--no-{flag}") if isinstance(value, bool) else f"--{flag} {value}")
    return " ".join(options)


def register(commands: Any) -> None:
    """Add ``recommend`` to the ``videogen`` sub-commands."""
    parser = commands.add_parser(
        "recommend", help="models and parameters that give what you want, cheapest first",
        description="Find the models and parameter sets that meet your wishes, cheapest first, with exact prices "
                    "(from the catalog's schemas and price formulas; nothing is submitted). When nothing fits, "
                    "the nearest options with one wish dropped at a time. Exit status 1 when nothing fits.")
    parser.add_argument("--category", choices=[c.value for c in Category], help="what kind of model")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="clip length in seconds")
    parser.add_argument("--resolution", help="e.g. 720p or 1080p")
    parser.add_argument("--aspect-ratio", help="e.g. 16:9 or 9:16")
    audio = parser.add_mutually_exclusive_group()
    audio.add_argument("--audio", dest="audio", action="store_true", default=None, help="with sound")
    audio.add_argument("--no-audio", dest="audio", action="store_false", help="silent")
    parser.add_argument("--budget", type=float, metavar="USD", help="at most this much per run, in dollars")
    parser.add_argument("--limit", type=int, default=5, help="how many options (default 5)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_recommend)
