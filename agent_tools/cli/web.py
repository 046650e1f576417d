"""``videogen web``: serve the dashboard (gallery, job pages, usage, admin) on its own port.

    videogen web [--host 127.0.0.1] [--port 8766] [--simulate]

Sign in with an account token (``videogen accounts token ACCOUNT``; ``local`` is the admin). The
dashboard itself is ``agent_tools.web``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .output import exposure_warning, settings_of, stop_on_sigterm


def cmd_web(args: argparse.Namespace) -> int:
    import asyncio

    settings = settings_of(args)
    host = args.host or settings.web.host
    port = settings.web.port if args.port is None else args.port
    warning = exposure_warning(host)
    if warning:
        print(warning, file=sys.stderr)
    try:
        asyncio.run(_serve(settings, host, port, args.simulate))
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    return 0


async def _serve(settings: Any, host: str, port: int, simulate: bool) -> None:
    from ..serving import serve
    from ..web import create_app

    stop_on_sigterm()

    def ready(url: str) -> None:
        print(f"videogen dashboard at {url}/ — sign in with an account token (`videogen accounts token ACCOUNT` "
              "makes one; the `local` account is an admin); Ctrl-C stops it.", file=sys.stderr, flush=True)

    await serve(create_app(settings=settings, simulate=simulate), host, port, on_ready=ready)


def register(commands: Any) -> None:
    web = commands.add_parser(
        "web", help="serve the web dashboard (gallery, usage, admin)",
        description="Serve the dashboard: your clips as a gallery with live progress, each job's player, "
                    "parameters and timeline, spend per day and limits, and for admins every account's usage, "
                    "limits, holds, accounts, tokens and the audit log. Sign in with an account token.")
    web.add_argument("--host", help="address to bind (default: [web] host, 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (default: [web] port, 8766; 0 picks a free one)")
    web.add_argument("--simulate", action="store_true",
                     help="use the built-in provider simulator: free, offline, test clips")
    web.set_defaults(func=cmd_web)
