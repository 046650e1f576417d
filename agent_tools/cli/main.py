"""The ``videogen`` parser and entry point: each command group registers itself from its own module.

Every sub-command prints data on stdout (a table, or JSON with ``--json``) and problems on stderr,
and exits non-zero on any problem, so it composes in scripts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import UserError
from . import accounts, books, chat, config, database, discord, generate, mcp, models, recommend, reconcile, simulator, web
from .output import EXIT_USAGE

# The order of the groups is the order `videogen --help` lists them in.
GROUPS = (models, recommend, generate, chat, simulator, accounts, books, reconcile, database, mcp, web, discord, config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videogen",
        description="Generate videos and images with hosted models (fal.ai, WaveSpeed) within quotas.")
    parser.add_argument("--version", action="version", version=f"videogen {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $VIDEOGEN_CONFIG, ./videogen.toml, then the user config dir)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands)
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
