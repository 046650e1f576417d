"""``videogen mcp``: serve every model as MCP tools; ``videogen mcp install-claude``: set up Claude Desktop.

    videogen mcp                          stdio, as the local account (Claude Desktop, local agents)
    videogen mcp --http [--host H] [--port P]   streamable HTTP at /mcp, bearer token per account
    videogen mcp --http --web             …and the web dashboard beside it, at /dashboard/
    videogen mcp --simulate               either transport against the built-in simulator (free)
    videogen mcp --tools compact          a few generic tools instead of one per model (small contexts)
    videogen mcp install-claude [--write] print (or merge) the claude_desktop_config.json entry

On stdio, stdout carries the protocol only: every message and log line goes to stderr.
The server itself is ``agent_tools.mcp_server``, imported only when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..agent import MODES
from ..config import Settings
from ..errors import UserError
from ..mcp_server import claude_desktop
from .output import exposure_warning, settings_of, stop_on_sigterm


def _log_to_stderr(verbose: bool = False) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("agent_tools").setLevel(logging.DEBUG if verbose else logging.INFO)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


KEY_VARS = (("fal", "FAL_KEY"), ("wavespeed", "WAVESPEED_API_KEY"))


def placeholder_hints(settings: Settings) -> dict[str, str]:
    """For each provider whose key is still an install-claude placeholder, the refusal to give."""
    hints = {}
    for section, var in KEY_VARS:
        key = getattr(settings, section).key
        if key is not None and claude_desktop.is_placeholder(key.get_secret_value()):
            hints[section] = (f"{var} is still the placeholder \"{key.get_secret_value()}\" in claude_desktop_config.json: "
                              f"replace it there with your {section} key (or set it in the config file), then quit and "
                              "restart Claude Desktop. Or try it free with --simulate.")
    return hints


def without_placeholder_keys(settings: Settings) -> Settings:
    """Keys still reading ``<paste your FAL_KEY here>`` (from install-claude) count as unset."""
    updates = {}
    for section, var in KEY_VARS:
        if section in placeholder_hints(settings):
            _say(f"note: {var} is still the placeholder from `videogen mcp install-claude`; paste the real key "
                 "into claude_desktop_config.json (or the config file). Its models are refused until then.")
            updates[section] = getattr(settings, section).model_copy(update={"key": None})
    return settings.model_copy(update=updates) if updates else settings


DASHBOARD_PATH = "/dashboard"

# -- serving ------------------------------------------------------------------------------------

def cmd_mcp(args: argparse.Namespace) -> int:
    import asyncio

    _log_to_stderr(args.verbose)
    loaded = settings_of(args)
    hints = placeholder_hints(loaded)
    settings = without_placeholder_keys(loaded)
    if args.tools is not None:
        settings = settings.model_copy(update={"mcp": settings.mcp.model_copy(update={"tools": args.tools})})
    if args.web and not args.http:
        raise UserError("--web serves the dashboard beside /mcp over HTTP: add --http (or run `videogen web`).")
    try:
        asyncio.run(_serve(settings, http=args.http, host=args.host or settings.mcp.host,
                           port=settings.mcp.port if args.port is None else args.port, simulate=args.simulate,
                           web=args.web, key_hints=hints))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    return 0


async def _serve(settings: Settings, *, http: bool, host: str, port: int, simulate: bool, web: bool = False,
                 key_hints: dict[str, str] | None = None) -> None:
    from ..simulator.session import simulated

    stop_on_sigterm(graceful=http)
    async with simulated(settings, simulate) as effective:
        origin = {"simulated": True} if simulate else {}
        if not http:
            # The handshake is answered before the Toolkit opens (mcp_server.deferred): a client
            # waits for tools/list, not for the database, the job engine and the catalog's models.
            from ..mcp_server.deferred import serve_deferred_stdio

            _say("videogen MCP server on stdio, as the local account"
                 + (" (simulated providers)" if simulate else "") + ".")
            await serve_deferred_stdio(effective, origin=origin, key_hints=key_hints)
            return
        from ..mcp_server.server import serve_http
        from ..toolkit import Toolkit

        toolkit = await Toolkit.open(effective)
        toolkit.missing_key_hints.update(key_hints or {})
        try:
            warning = exposure_warning(host)
            if warning:
                _say(warning)
            mounts = {}
            if web:
                from ..web import create_app

                mounts[DASHBOARD_PATH] = create_app(toolkit, origin=origin)

            def ready(url: str) -> None:
                _say(f"videogen MCP server: streamable HTTP at {url}. Each request needs "
                     "'Authorization: Bearer <token>' (`videogen accounts token ACCOUNT` makes one); "
                     "Ctrl-C stops it.")
                if web:
                    _say(f"The dashboard is at {url.removesuffix('/mcp')}{DASHBOARD_PATH}/ (sign in with a token).")

            await serve_http(toolkit, host, port, origin=origin, on_ready=ready, mounts=mounts)
        finally:
            await toolkit.close()


# -- Claude Desktop -----------------------------------------------------------------------------

def cmd_install_claude(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    entry = claude_desktop.server_entry(settings, include_keys=args.include_keys, simulate=args.simulate)
    path = Path(args.config_file).expanduser() if args.config_file else claude_desktop.config_path()
    placeholders = [var for var, value in entry.get("env", {}).items() if claude_desktop.is_placeholder(value)]
    if args.write:
        backup = claude_desktop.write_entry(path, entry, args.name)
        print(f"Added the '{args.name}' server to {path}.")
        if backup is not None:
            print(f"The previous file is kept as {backup}.")
    else:
        print(claude_desktop.snippet(entry, args.name))
        _say(f"\nMerge this into {path} (under \"mcpServers\", next to any servers already there), or run "
             "`videogen mcp install-claude --write` to do it with a backup.")
    if placeholders:
        _say(f"Replace {' and '.join(placeholders)} in that entry with your key(s) (or put them in the config "
             "file and run this again), or pass --include-keys to copy the keys this shell has.")
    if args.include_keys and any(claude_desktop.is_secret(item) for item in entry.get("env", {}).items()):
        _say("The entry contains your API keys: keep that file private.")
    _say("Then quit Claude Desktop completely and start it again; the server's log is mcp-server-"
         f"{args.name}.log in Claude's logs folder.")
    return 0


# -- wiring -------------------------------------------------------------------------------------

def register(commands: Any) -> None:
    """Add ``mcp`` (and ``mcp install-claude``) to the ``videogen`` sub-commands."""
    mcp = commands.add_parser(
        "mcp", help="serve every model as MCP tools (stdio or HTTP)",
        description="Serve every model as an MCP tool, plus list_models, recommend_models, estimate_cost, get_job, "
                    "wait_for_job, cancel_job, list_jobs and get_quota (--tools compact: list_models, describe_model, "
                    "generate and the same other tools); jobs and their outputs as resources, each model's prompting "
                    "guide as a prompt. Default: stdio as the local account (Claude Desktop). With --http: streamable "
                    "HTTP at /mcp (resumable streams), each request authenticated by an account's bearer token.",
        epilog="`videogen mcp install-claude` prints the Claude Desktop config entry.")
    mcp.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    mcp.add_argument("--host", help="address to bind with --http (default: [mcp] host, 127.0.0.1)")
    mcp.add_argument("--port", type=int, help="port with --http (default: [mcp] port, 8765; 0 picks a free one)")
    mcp.add_argument("--simulate", action="store_true",
                     help="use the built-in provider simulator: free, offline, test clips")
    mcp.add_argument("--tools", choices=MODES,
                     help="tool set: default = one tool per model; compact = list_models, describe_model, generate "
                          "and the job/cost/quota tools, for small contexts (default: [mcp] tools)")
    mcp.add_argument("--web", action="store_true",
                     help=f"with --http: serve the web dashboard beside /mcp, at {DASHBOARD_PATH}/ on the same port")
    mcp.add_argument("--verbose", action="store_true", help="debug logging on stderr")
    mcp.set_defaults(func=cmd_mcp)
    sub = mcp.add_subparsers(dest="mcp_command", metavar="SUBCOMMAND")
    install = sub.add_parser(
        "install-claude", help="print or write the Claude Desktop config entry",
        description="Print the claude_desktop_config.json entry that starts this videogen over stdio (absolute "
                    "paths; keys as placeholders unless --include-keys). --write merges it into Claude Desktop's "
                    "config file, keeping the other servers and a backup of the old file.")
    install.add_argument("--write", action="store_true", help="merge the entry into the config file")
    install.add_argument("--config-file", metavar="PATH",
                         help=f"Claude Desktop config file (default here: {claude_desktop.config_path()})")
    install.add_argument("--include-keys", action="store_true",
                         help="copy the API keys this shell has into the entry instead of placeholders")
    install.add_argument("--name", default=claude_desktop.SERVER_NAME, help="server name in Claude (default videogen)")
    install.add_argument("--simulate", action="store_true", help="make Claude Desktop run it against the simulator")
    install.set_defaults(func=cmd_install_claude)

