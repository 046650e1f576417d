"""The simulator as a running HTTP server: both providers, storage and files on one port.

Layout (one server, each provider's own path structure below its base):

- ``{base}/fal/queue``   → ``https://queue.fal.run``  (``Simulator.fal_queue_url``)
- ``{base}/fal/rest``    → ``https://rest.fal.ai``    (``Simulator.fal_rest_url``)
- ``{base}/fal/cdn``     → ``https://v3.fal.media``   (``Simulator.fal_cdn_url``, Python token uploads)
- ``{base}/fal/api``     → ``https://api.fal.ai``     (``Simulator.fal_api_url``, billing events)
- ``{base}/wavespeed``   → ``https://api.wavespeed.ai`` (``Simulator.wavespeed_base_url``)
- ``{base}/upload/{token}?X-Sim-Signature=…`` presigned-style upload PUTs (both providers)
- ``{base}/files/{token}/{name}`` generated media and uploaded files
- ``{base}/`` a JSON index; ``{base}/_sim/stats`` the counters
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TextIO

from aiohttp import web

from .billing import FalBillingRoutes
from .core import ROUTE, SimCore, SimStats
from .fal import FalRoutes
from .files import FileRoutes
from .scenarios import KNOWN_MARKERS, SimSettings
from .wavespeed import WaveSpeedRoutes

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimulatorURLs:
    """Where each simulated API lives under ``base_url``: one place for the paths, shared by the
    in-process ``Simulator`` and anything that runs ``python -m agent_tools.simulator`` elsewhere."""

    base_url: str

    @property
    def fal_queue_url(self) -> str:
        return f"{self.base_url}/fal/queue"

    @property
    def fal_rest_url(self) -> str:
        return f"{self.base_url}/fal/rest"

    @property
    def fal_cdn_url(self) -> str:
        return f"{self.base_url}/fal/cdn"

    @property
    def fal_jwks_url(self) -> str:
        """Where the simulated fal publishes the key its callbacks are signed with."""
        return f"{self.fal_rest_url}/.well-known/jwks.json"

    @property
    def fal_api_url(self) -> str:
        """Stands in for ``https://api.fal.ai`` (the billing-events API)."""
        return f"{self.base_url}/fal/api"

    @property
    def wavespeed_base_url(self) -> str:
        return f"{self.base_url}/wavespeed"


class Simulator(SimulatorURLs):
    """A local fal.ai + WaveSpeed server. ``await start()``, point the adapters at the URLs, ``await stop()``.

    ``clock`` (default ``time.monotonic``) drives every request's timeline, so a test can pass a
    function it controls and step through queued → running → done without sleeping.
    """

    def __init__(self, settings: SimSettings | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or SimSettings()
        self.core = SimCore(self.settings, clock)
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    # -- URLs -----------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if not self.core.base_url:
            raise RuntimeError("the simulator is not running: await start() first")
        return self.core.base_url

    @property
    def stats(self) -> SimStats:
        return self.core.stats

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        """Listen on ``host:port`` (0 picks a free port); returns once requests are accepted."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=4096)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        shown = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in shown:
            shown = f"[{shown}]"
        self.core.base_url = f"http://{shown}:{bound_port}"

    async def stop(self) -> None:
        await self.core.callbacks.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the app --------------------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count], client_max_size=self.settings.max_upload_bytes + 1024 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/_sim/stats", self._stats)
        FileRoutes(self.core).register(app)
        FalRoutes(self.core).register(app)
        FalBillingRoutes(self.core).register(app)
        WaveSpeedRoutes(self.core).register(app)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count every request by route and answer status, for requests-per-job benchmarks."""
        stats = self.core.stats
        stats.requests += 1
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = request.get(ROUTE)
            if route is None:
                route = request.match_info.route.name or ("not_found" if status == 404 else "other")
            stats.routes[route] += 1
            stats.responses[status] += 1

    async def _index(self, request: web.Request) -> web.Response:
        request[ROUTE] = "index"
        return web.json_response({
            "simulator": "videogen", "fal_queue_url": self.fal_queue_url, "fal_rest_url": self.fal_rest_url,
            "wavespeed_base_url": self.wavespeed_base_url, "markers": [f"[sim:{m}]" for m in KNOWN_MARKERS],
        })

    async def _stats(self, request: web.Request) -> web.Response:
        request[ROUTE] = "stats"
        return web.json_response(self.core.stats.as_dict())


def describe(sim: Simulator) -> str:
    """What ``serve`` prints: where each provider lives and how to point videogen at it."""
    return (f"videogen simulator listening on {sim.base_url}\n"
            f"  fal queue:  {sim.fal_queue_url}\n"
            f"  fal rest:   {sim.fal_rest_url}\n"
            f"  wavespeed:  {sim.wavespeed_base_url}\n"
            "Point videogen at it with:\n"
            f"  export VIDEOGEN_FAL_QUEUE_URL={sim.fal_queue_url}\n"
            f"  export VIDEOGEN_FAL_REST_URL={sim.fal_rest_url}\n"
            f"  export VIDEOGEN_WAVESPEED_BASE_URL={sim.wavespeed_base_url}\n"
            "  export FAL_KEY=sim-key WAVESPEED_API_KEY=sim-key  # any key; bad… → 401, broke… → no balance\n"
            "Script failures with prompt markers such as [sim:content_policy] or [sim:slow=30]. Ctrl-C stops.")


async def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, settings: SimSettings | None = None, *,
                out: TextIO | None = None) -> None:
    """Run a simulator until cancelled (Ctrl-C in ``asyncio.run``), printing its URLs first."""
    sim = Simulator(settings)
    await sim.start(host, port)
    try:
        print(describe(sim), file=out or sys.stdout, flush=True)
        await asyncio.Event().wait()
    finally:
        await sim.stop()


@contextlib.contextmanager
def running_simulator(settings: SimSettings | None = None, host: str = DEFAULT_HOST, port: int = 0, *,
                      clock: Callable[[], float] = time.monotonic) -> Iterator[Simulator]:
    """A simulator on its own event loop in a daemon thread, for synchronous tests and scripts.

    Read ``stats`` freely; call nothing else on it from your thread while it runs.
    """
    sim = Simulator(settings, clock=clock)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start(host, port))
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(sim.stop())
        loop.close()

    thread = threading.Thread(target=run, name="videogen-simulator", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]
    try:
        yield sim
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
