"""``videogen discord``: run the Discord bot, or print the slash commands it would sync.

discord.py and the bot are imported only when this command runs, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from .output import settings_of


def dump_commands(out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print the sync payload as JSON; problems against Discord's limits go to stderr (exit 1)."""
    from bots.discord.commands import build_payload
    from bots.discord.payloads import command_chars, validate_payload

    commands = build_payload()
    print(json.dumps(commands, indent=2, ensure_ascii=False), file=out)
    problems = validate_payload(commands)
    sizes = ", ".join(f"/{c['name']} {command_chars(c)}" for c in commands)
    if problems:
        print(f"{len(problems)} problem(s) against Discord's limits:", file=err)
        for problem in problems:
            print(f"  {problem}", file=err)
        return 1
    print(f"{len(commands)} commands within Discord's limits (characters of 8,000: {sizes})", file=err)
    return 0


def cmd_discord(args: argparse.Namespace) -> int:
    if args.dump_commands:
        return dump_commands()
    settings = settings_of(args)
    import asyncio

    from bots.discord.app import serve

    try:
        asyncio.run(serve(settings, simulate=args.simulate, force_sync=args.sync, log_to_stderr=True))
    except KeyboardInterrupt:
        pass
    return 0


def register(commands: Any) -> None:
    """Add ``discord`` to the top-level parser."""
    parser = commands.add_parser(
        "discord", help="run the Discord bot",
        description="Run the Discord bot: /video and /image from the catalog, /models, /quota, /jobs, /cancel and "
                    "/admin. The token comes from DISCORD_TOKEN or [discord] token; commands are synced to "
                    "[discord] guild_ids (instant) or globally, and only when they changed.")
    parser.add_argument("--dump-commands", action="store_true",
                        help="print the slash-command JSON that would be synced, check it against Discord's limits "
                             "and exit (no token, no connection)")
    parser.add_argument("--sync", action="store_true", help="sync the commands even if they did not change")
    parser.add_argument("--simulate", action="store_true",
                        help="use the built-in provider simulator: free test clips, nothing billed")
    parser.set_defaults(func=cmd_discord)
