"""``videogen discord``: run the Discord bot, or print the slash commands it would sync.

discord.py and the bot are imported only when this command runs, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from ..errors import UserError
from .output import settings_of

if TYPE_CHECKING:
    from ..config import Settings


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


def parse_shards(text: str) -> list[int]:
    """``0-3`` or ``0,2,5`` (or both, ``0-1,4``) → shard ids."""
    ids: list[int] = []
    try:
        for part in text.split(","):
            low, dash, high = part.strip().partition("-")
            ids += list(range(int(low), int(high) + 1)) if dash else [int(low)]
    except ValueError:
        raise UserError(f"--shards takes shard ids such as 0-3 or 0,2,5, not {text!r}.") from None
    return ids


def with_shards(settings: Settings, shard_count: int | None, shards: str | None) -> Settings:
    """``--shard-count`` / ``--shards`` over ``[discord] shard_count`` / ``shard_ids``, checked the same way."""
    if shard_count is None and shards is None:
        return settings
    data = settings.discord.model_dump()
    if shard_count is not None:
        data["shard_count"] = shard_count
    if shards is not None:
        data["shard_ids"] = parse_shards(shards)
    try:
        discord_settings = type(settings.discord).model_validate(data)
    except ValidationError as exc:
        why = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors(include_url=False))
        raise UserError(f"--shards/--shard-count: {why}") from None
    return settings.model_copy(update={"discord": discord_settings})  # keeps where the settings came from


def cmd_discord(args: argparse.Namespace) -> int:
    if args.dump_commands:
        return dump_commands()
    settings = with_shards(settings_of(args), args.shard_count, args.shards)
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
        description="Run the Discord bot: one command per model category from the catalog (/text-to-video, "
                    "/image-to-video, …), /models, /quota, /jobs, /cancel, /show, /estimate, /settings and /admin. "
                    "The token comes from DISCORD_TOKEN or [discord] token; commands are synced to [discord] "
                    "guild_ids (instant) or globally, and only when they changed.")
    parser.add_argument("--dump-commands", action="store_true",
                        help="print the slash-command JSON that would be synced, check it against Discord's limits "
                             "and exit (no token, no connection)")
    parser.add_argument("--sync", action="store_true", help="sync the commands even if they did not change")
    parser.add_argument("--simulate", action="store_true",
                        help="use the built-in provider simulator: free test clips, nothing billed")
    parser.add_argument("--shard-count", type=int, metavar="N",
                        help="total gateway shards across all bot processes (overrides [discord] shard_count)")
    parser.add_argument("--shards", metavar="IDS",
                        help="the shards this process runs, e.g. 0-3 or 0,2 (overrides [discord] shard_ids); "
                             "start the processes one after another")
    parser.set_defaults(func=cmd_discord)
