"""The receiver on an HTTP server: one route, ``POST /webhooks/{provider}``, outside any bearer auth
(a callback proves itself by its signature). Starlette (``videogen web``, ``videogen mcp --http``)
and aiohttp (``videogen discord``'s small server, the tests) get the same handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .receiver import WebhookReceiver

PATH = "/webhooks/{provider}"
MAX_BODY = 2 * 1024 * 1024
"""A callback larger than this is refused unread: fal's payload is the model's JSON output (URLs)."""


def starlette_route(receiver: Callable[[], WebhookReceiver]) -> Any:
    """A Starlette ``Route`` for the receiver ``receiver()`` returns (the app's Toolkit may open
    after the routes are built, in its lifespan)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> JSONResponse:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        status, body = await receiver().handle(request.path_params["provider"], request.headers,
                                               await request.body())
        return JSONResponse(body, status_code=status)

    return Route(PATH, endpoint, methods=["POST"])


def aiohttp_app(receiver: WebhookReceiver) -> Any:
    """An aiohttp ``Application`` serving only the receiver."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        status, body = await receiver.handle(request.match_info["provider"], request.headers, await request.read())
        return web.json_response(body, status=status)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, handler)
    return app


async def serve_aiohttp(receiver: WebhookReceiver, host: str, port: int) -> Any:
    """Listen on ``host:port`` with only the receiver (``videogen discord``); returns the runner to
    ``cleanup()``. A tunnel or reverse proxy makes it reachable as ``[webhooks] public_url``."""
    from aiohttp import web

    runner = web.AppRunner(aiohttp_app(receiver), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
