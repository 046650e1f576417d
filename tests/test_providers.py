"""Both provider adapters over real loopback HTTP: shared test servers, the never-leak-the-key
guarantee, and (when the simulator is available) end-to-end runs through ``agent_tools.simulator``.

``FakeServer`` and friends are imported by ``test_fal_adapter.py`` and ``test_wavespeed_adapter.py``;
they live here because this is the cross-provider test module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from agent_tools.providers.base import RequestRef
from agent_tools.providers.errors import ProviderError
from agent_tools.providers.fal import FalAdapter
from agent_tools.providers.http import RetryPolicy
from agent_tools.providers.wavespeed import WaveSpeedAdapter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class FakeServer:
    """A real aiohttp server whose routes tests script after start; records every request."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.routes: dict[tuple[str, str], Handler] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    def on(self, method: str, path: str, *replies: Handler) -> None:
        """Answer with ``replies`` in turn, repeating the last one."""
        queue = list(replies)

        async def handler(request: web.Request) -> web.StreamResponse:
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            return await reply(request)

        self.routes[(method, path)] = handler

    def hits(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, request.query_string, dict(request.headers), body))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        return await handler(request)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = "http://127.0.0.1:%d" % self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None,
          text: str | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text, headers=headers)
        return web.json_response(body if body is not None else {}, status=status, headers=headers)
    return handler


async def reset(request: web.Request) -> web.StreamResponse:
    """Drop the connection after the request arrived: the client cannot know if it was processed."""
    request.transport.abort()
    return web.Response()


def slow(seconds: float) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response({})
    return handler


class Sleeps(list):
    """Records the backoff delays instead of waiting them out."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    srv = FakeServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


async def closed_port() -> int:
    """A port nothing listens on: connecting fails before any request byte is sent."""
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    return port


def fast_policy(sleeps: Sleeps | None = None, **overrides: Any) -> RetryPolicy:
    async def no_wait(seconds: float) -> None:
        return None

    options: dict[str, Any] = {"max_attempts": 3, "base_delay": 0.0, "max_delay": 0.0, "result_attempts": 2,
                               "sleep": sleeps if sleeps is not None else no_wait}
    return RetryPolicy(**{**options, **overrides})


# -- the key never appears in an error -----------------------------------------------------------

FAL_KEY = "leakcheck-fal-id-7f3a9c:leakcheck-fal-secret-c0ffee1234"
WS_KEY = "leakcheck-wavespeed-9b8d7e6f5a4b3c2d1e0f"


def _echo(status: int, shape: str) -> Handler:
    """An error reply that quotes the request's Authorization header the way careless servers do."""
    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        secret = auth.split(":")[-1]  # the secret half alone must not slip through either
        bodies: dict[str, Any] = {
            "detail": {"detail": f"Invalid header {auth}", "error_type": "runner_server_error"},
            "list": {"detail": [{"loc": ["body", "prompt"], "msg": f"bad key {auth} / {secret}",
                                 "type": "value_error"}]},
            "policy": {"detail": [{"loc": ["body"], "msg": f"flagged for {auth}", "type": "content_policy_violation"}]},
            "envelope": {"code": status, "message": f"Unauthorized: {auth}", "error_code": f"BAD_KEY {auth}"},
            "balance": {"code": status, "message": f"insufficient balance for {auth}"},
        }
        if shape == "text":
            return web.Response(status=status, text=f"<html>headers: Authorization: {auth}</html>")
        return web.json_response(bodies[shape], status=status)
    return handler


def _failed_prediction(code: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        return web.json_response({"code": 200, "message": "success", "data": {
            "id": "t1", "status": "failed", "code": code, "error": f"failed with {auth}", "outputs": []}})
    return handler


def _assert_clean(error: BaseException, *secrets: str) -> None:
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for exc in chain:
        texts = [str(exc), repr(exc), *(str(a) for a in exc.args)]
        if isinstance(exc, ProviderError):
            texts += [exc.message, str(exc.error_type)]
        for secret in secrets:
            assert all(secret not in t for t in texts), f"{secret!r} leaked in {type(exc).__name__}: {texts}"


FAL_CASES = [(status, shape) for status in (400, 401, 403, 404, 422, 429, 500, 503, 504)
             for shape in ("detail", "list", "policy", "text")]


@pytest.mark.parametrize("status, shape", FAL_CASES)
async def test_fal_errors_never_contain_the_key(server: FakeServer, status: int, shape: str) -> None:
    fal = FalAdapter(FAL_KEY, queue_url=server.url, rest_url=server.url, retry=fast_policy())
    ref = RequestRef("fal", "fal-ai/pika/v2.2/text-to-video", "r1")
    for method, path in (("POST", "/fal-ai/pika/v2.2/text-to-video"), ("GET", "/fal-ai/pika/requests/r1/status"),
                         ("GET", "/fal-ai/pika/requests/r1"), ("PUT", "/fal-ai/pika/requests/r1/cancel")):
        server.on(method, path, _echo(status, shape))
    calls = (fal.submit("fal-ai/pika/v2.2/text-to-video", {"prompt": "x"}), fal.status(ref), fal.result(ref),
             fal.cancel(ref))
    for call in calls:
        try:
            await call
        except ProviderError as exc:
            _assert_clean(exc, FAL_KEY, *FAL_KEY.split(":"))
    await fal.aclose()


WS_CASES = [(status, shape) for status in (400, 401, 403, 404, 413, 429, 500, 502)
            for shape in ("envelope", "balance", "text")] + [(200, "envelope"), (200, "balance")]


@pytest.mark.parametrize("status, shape", WS_CASES)
async def test_wavespeed_errors_never_contain_the_key(server: FakeServer, status: int, shape: str) -> None:
    ws = WaveSpeedAdapter(WS_KEY, base_url=server.url, retry=fast_policy())
    ref = RequestRef("wavespeed", "wavespeed-ai/hunyuan-video/i2v", "t1")
    server.on("POST", "/api/v3/wavespeed-ai/hunyuan-video/i2v", _echo(status, shape))
    server.on("GET", "/api/v3/predictions/t1/result", _echo(status, shape))
    for call in (ws.submit("wavespeed-ai/hunyuan-video/i2v", {"prompt": "x"}), ws.status(ref), ws.result(ref)):
        with pytest.raises(ProviderError) as info:
            await call
        _assert_clean(info.value, WS_KEY)
    await ws.aclose()


@pytest.mark.parametrize("code", [1200, 1400, 1402, 1403, 5000, 9999])
async def test_wavespeed_task_errors_never_contain_the_key(server: FakeServer, code: int) -> None:
    ws = WaveSpeedAdapter(WS_KEY, base_url=server.url, retry=fast_policy())
    server.on("GET", "/api/v3/predictions/t1/result", _failed_prediction(code))
    ref = RequestRef("wavespeed", "wavespeed-ai/hunyuan-video/i2v", "t1")
    assert WS_KEY not in str(await ws.status(ref))
    with pytest.raises(ProviderError) as info:
        await ws.result(ref)
    _assert_clean(info.value, WS_KEY)
    await ws.aclose()


async def test_fal_completed_status_error_is_redacted(server: FakeServer) -> None:
    async def completed(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "COMPLETED", "logs": None,
                                  "error": f"runner saw {request.headers['Authorization']}"})
    server.on("GET", "/fal-ai/pika/requests/r1/status", completed)
    fal = FalAdapter(FAL_KEY, queue_url=server.url, retry=fast_policy())
    update = await fal.status(RequestRef("fal", "fal-ai/pika/v2.2/text-to-video", "r1"))
    assert update.error and all(part not in update.error for part in (FAL_KEY, *FAL_KEY.split(":")))
    await fal.aclose()


async def test_transport_errors_never_contain_the_key() -> None:
    port = await closed_port()
    fal = FalAdapter(FAL_KEY, queue_url=f"http://127.0.0.1:{port}", rest_url=f"http://127.0.0.1:{port}",
                     retry=fast_policy())
    ws = WaveSpeedAdapter(WS_KEY, base_url=f"http://127.0.0.1:{port}", retry=fast_policy())
    ref = RequestRef("fal", "fal-ai/pika", "r1")
    for call, secret in ((fal.submit("fal-ai/pika", {}), FAL_KEY), (fal.status(ref), FAL_KEY),
                         (ws.submit("a/b", {}), WS_KEY), (ws.result(ref), WS_KEY)):
        with pytest.raises(ProviderError) as info:
            await call
        _assert_clean(info.value, secret)
    await fal.aclose()
    await ws.aclose()


@pytest.mark.parametrize("bad", ["", "   ", "key with space", "kéy", "line\nbreak"])
def test_unusable_keys_fail_at_construction_without_echoing(bad: str) -> None:
    for make in (lambda: FalAdapter(bad), lambda: WaveSpeedAdapter(bad)):
        with pytest.raises(ProviderError) as info:
            make()
        if bad.strip():
            _assert_clean(info.value, bad.strip())


async def test_adapter_repr_hides_the_key() -> None:
    async with FalAdapter(FAL_KEY) as fal, WaveSpeedAdapter(WS_KEY) as ws:
        assert FAL_KEY not in f"{fal!r} {vars(fal)!r}" and WS_KEY not in f"{ws!r} {vars(ws)!r}"
