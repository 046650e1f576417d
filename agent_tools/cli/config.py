"""``videogen config check``: every setting, its value (secrets masked) and where it came from."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import describe
from .output import settings_of, table


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = settings_of(args)
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


def register(commands: Any) -> None:
    """Add ``config check`` to the top-level parser."""
    config = commands.add_parser("config", help="inspect the configuration",
                                 description="Inspect the configuration.")
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = config_commands.add_parser("check", help="show every setting and where it came from",
                                       description="Show every setting, where it came from; secrets masked.")
    check.set_defaults(func=cmd_config_check)
