"""The ``videogen`` parser and entry point: each command group registers itself from its own module.

Every sub-command prints data on stdout (a table, or JSON with ``--json``) and problems on stderr,
and exits non-zero on any problem, so it composes in scripts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from types import ModuleType

from .. import __version__
from ..errors import UserError
from .output import EXIT_USAGE

# The command modules, in the order `videogen --help` lists them, and the top-level commands each
# registers. A run imports only the module of the command it names (`videogen mcp` never loads the
# chat, web or accounts commands); `--help`, no command or an unknown one loads them all.
# tests/test_cli.py checks this table against what the modules really register.
GROUPS: dict[str, tuple[str, ...]] = {
    "models": ("models", "schema", "estimate"),
    "recommend": ("recommend",),
    "generate": ("generate", "jobs"),
    "chat": ("chat",),
    "simulator": ("simulator",),
    "accounts": ("accounts", "quota", "spend", "holds"),
    "books": ("books",),
    "reconcile": ("reconcile",),
    "database": ("db",),
    "mcp": ("mcp",),
    "web": ("web",),
    "discord": ("discord",),
    "config": ("config",),
}
GROUP_OF = {command: group for group, commands in GROUPS.items() for command in commands}


def group_module(group: str) -> ModuleType:
    return import_module(f"{__package__}.{group}")


def named_command(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names, if any, skipping the top-level options before it."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("-"):
            return arg
        elif not arg.startswith("--config="):
            return None  # --help, --version or a mistake: the full parser answers
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` (a known sub-command) only that command's group is loaded."""
    parser = argparse.ArgumentParser(
        prog="videogen",
        description="Generate videos and images with hosted models (fal.ai, WaveSpeed) within quotas.")
    parser.add_argument("--version", action="version", version=f"videogen {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $VIDEOGEN_CONFIG, ./videogen.toml, then the user config dir)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = [GROUP_OF[command]] if command in GROUP_OF else list(GROUPS)
    for group in groups:
        group_module(group).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(named_command(argv))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `videogen schema | head`
        return 0
