"""``videogen simulator``: serve both provider protocols locally, for tests, demos and free trials."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_simulator(args: argparse.Namespace) -> int:
    import asyncio

    from ..simulator import SimSettings, serve

    try:
        asyncio.run(serve(args.host, args.port, SimSettings()))
    except KeyboardInterrupt:
        pass
    return 0


def register(commands: Any) -> None:
    """Add ``simulator`` to the top-level parser."""
    sim = commands.add_parser("simulator", help="run the fal + WaveSpeed simulator",
                              description="Serve both provider protocols locally, with scripted outcomes, for "
                                          "tests, demos and trying a setup for free.")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)")
    sim.set_defaults(func=cmd_simulator)
