"""Run a surface against the simulator: ``simulated(settings, enabled)``.

Every surface's ``--simulate`` flag (the CLI, the MCP server, the Discord bot) goes through this one
context manager, so they all start the simulator in-process and point both providers at it the same way.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

from pydantic import SecretStr

from ..config import Settings

SIMULATED_KEY = "simulated-key"


@contextlib.asynccontextmanager
async def simulated(settings: Settings, enabled: bool) -> AsyncIterator[Settings]:
    """With ``--simulate``: start the simulator in this process and point both providers at it."""
    if not enabled:
        yield settings
        return
    from .scenarios import SimSettings  # imported here: the server pulls in aiohttp
    from .server import Simulator

    sim = Simulator(SimSettings())
    await sim.start(host="127.0.0.1", port=0)
    try:
        fal = settings.fal.model_copy(update={"key": SecretStr(SIMULATED_KEY), "queue_url": sim.fal_queue_url,
                                              "rest_url": sim.fal_rest_url})
        wavespeed = settings.wavespeed.model_copy(update={"key": SecretStr(SIMULATED_KEY),
                                                          "base_url": sim.wavespeed_base_url})
        print(f"SIMULATED: providers are the local simulator at {sim.base_url}; outputs are test clips, "
              "not real generations, and nothing is billed.", file=sys.stderr)
        yield settings.model_copy(update={"fal": fal, "wavespeed": wavespeed})
    finally:
        await sim.stop()
