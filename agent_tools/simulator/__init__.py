"""A local stand-in for fal.ai's queue API and WaveSpeed AI's v3 API, for tests, demos and trials.

    from agent_tools.simulator import Simulator, SimSettings
    sim = Simulator(SimSettings(queue_seconds=0.2, run_seconds=0.3))
    await sim.start(host="127.0.0.1", port=0)
    sim.fal_queue_url, sim.fal_rest_url, sim.wavespeed_base_url, sim.stats
    await sim.stop()

It speaks both protocols as docs/providers.md describes them, returns real media (an H.264 MP4 or
a PNG that says "SIMULATED") and is scripted by ``SimSettings`` and by ``[sim:…]`` markers in the
prompt; ``scenarios.py`` documents every marker. ``session.simulated`` is how a surface's
``--simulate`` runs against it. The names below load on first use, so importing a light module of this
package (``png``, ``session``) does not pull in aiohttp.
"""

from importlib import import_module
from typing import Any

_HOMES = {"SimStats": "core", "KNOWN_MARKERS": "scenarios", "Outcome": "scenarios", "SimSettings": "scenarios",
          "DEFAULT_HOST": "server", "DEFAULT_PORT": "server", "Simulator": "server", "describe": "server",
          "running_simulator": "server", "serve": "server"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "KNOWN_MARKERS", "Outcome", "SimSettings", "SimStats", "Simulator",
           "describe", "running_simulator", "serve"]
