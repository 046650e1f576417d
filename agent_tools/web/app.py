"""The dashboard's ASGI app: the routes of ``dashboard.py``, ``pages.py`` and ``admin.py`` plus static files.

``create_app(toolkit)`` serves a Toolkit that is already open (one shared with another HTTP surface);
``create_app(settings=…)`` opens its own in the app's lifespan (``videogen web``), with
the simulator when ``simulate`` is set.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import Settings
from ..simulator.session import simulated
from ..toolkit import Toolkit
from ..webhooks.mount import starlette_route
from . import admin, pages
from .dashboard import HERE, Dashboard
from .session import Signer


def create_app(toolkit: Toolkit | None = None, *, settings: Settings | None = None, simulate: bool = False,
               origin: Mapping[str, Any] | None = None, secret: bytes | None = None,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The dashboard app. Pass an open ``toolkit``, or ``settings`` for the app to open its own."""
    if toolkit is None and settings is None:
        raise ValueError("create_app needs a toolkit or settings")
    config = (toolkit.settings if toolkit is not None else settings).web  # type: ignore[union-attr]
    if secret is None and config.secret is not None:
        secret = config.secret.get_secret_value().encode()
    signer = Signer(secret, max_age=config.session_hours * 3600, clock=clock)
    dashboard = Dashboard(toolkit, signer, origin={**({"simulated": True} if simulate else {}), **(origin or {})})

    routes: list[BaseRoute] = [
        Route("/login", dashboard.login_form, methods=["GET"], name="login"),
        Route("/login", dashboard.login, methods=["POST"], name="login_post"),
        Route("/logout", dashboard.page(dashboard.logout), methods=["POST"], name="logout"),
        Route("/media/{job_id:str}/{index:int}", dashboard.page(dashboard.media), name="media"),
        *pages.routes(dashboard),
        *admin.routes(dashboard),
        starlette_route(lambda: dashboard.toolkit.webhooks),  # provider callbacks: signed, no sign-in
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if toolkit is not None:
            yield
            return
        assert settings is not None
        async with simulated(settings, simulate) as effective:
            opened = await Toolkit.open(effective)
            dashboard._toolkit = opened
            try:
                yield
            finally:
                dashboard._toolkit = None
                await opened.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = dashboard
    return app
