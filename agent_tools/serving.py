"""Serve an ASGI app with uvicorn on a socket bound here, so a busy port is a clear error.

Every HTTP surface (the MCP server, the dashboard) starts the same way: bind (port 0 picks a free
one), start uvicorn on that socket, report the URL once it listens, stop cleanly on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from .errors import UserError


class Prefixed:
    """ASGI: requests under a prefix (``/dashboard/…``) go to that prefix's app, with ``root_path``
    set so it builds its own URLs and cookie paths; everything else, and the lifespan, goes to ``main``
    (the MCP app, whose lifespan runs its session manager). ``/dashboard`` alone redirects to ``/dashboard/``."""

    def __init__(self, main: Any, mounts: Mapping[str, Any]) -> None:
        self.main = main
        self.mounts = {prefix.rstrip("/"): app for prefix, app in mounts.items()}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            for prefix, app in self.mounts.items():
                if path == prefix:
                    query = scope.get("query_string", b"")
                    location = (scope.get("root_path", "") + prefix + "/").encode() + (b"?" + query if query else b"")
                    await send({"type": "http.response.start", "status": 307,
                                "headers": [(b"location", location), (b"content-length", b"0")]})
                    await send({"type": "http.response.body", "body": b""})
                    return
                if path.startswith(prefix + "/"):
                    await app({**scope, "root_path": scope.get("root_path", "") + prefix}, receive, send)
                    return
        await self.main(scope, receive, send)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``, or a ``UserError`` that says to pick another port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"Cannot listen on {host}:{port} ({exc.strerror}); pick another --port.") from None
    return sock


def base_url(host: str, sock: socket.socket) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def running(app: Any, host: str = "127.0.0.1", port: int = 0, *,
                  log_level: str = "warning") -> AsyncIterator[str]:
    """Serve ``app`` in this event loop while the block runs; yields its base URL."""
    import uvicorn

    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the HTTP server stopped before it started")
            await asyncio.sleep(0.01)
        yield base_url(host, sock)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


async def serve(app: Any, host: str, port: int, *, on_ready: Callable[[str], None] | None = None,
                log_level: str = "warning") -> None:
    """Serve until cancelled (Ctrl-C / SIGTERM); ``on_ready(base URL)`` once listening."""
    async with running(app, host, port, log_level=log_level) as url:
        if on_ready is not None:
            on_ready(url)
        await asyncio.Event().wait()
