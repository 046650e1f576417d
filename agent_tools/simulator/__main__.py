"""``python -m agent_tools.simulator [--host H] [--port N] [--queue-seconds S] [--run-seconds S]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .scenarios import SimSettings
from .server import DEFAULT_HOST, DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agent_tools.simulator",
                                     description="Run the local fal.ai + WaveSpeed simulator.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--queue-seconds", type=float, default=2.0, help="time per queue position")
    parser.add_argument("--run-seconds", type=float, default=6.0, help="time a request runs")
    args = parser.parse_args(argv)
    settings = SimSettings(queue_seconds=args.queue_seconds, run_seconds=args.run_seconds)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, settings))


if __name__ == "__main__":
    main()
