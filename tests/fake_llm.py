"""A scripted fake OpenAI-compatible server (``POST /v1/chat/completions``) on loopback, for tests.

Each request takes the next turn of the script. A turn is a dict (or a function of the request
body returning one):

- ``text`` and/or ``tool_calls`` (``[(name, arguments dict or raw JSON text), ...]``): streamed as
  SSE chunks when the request asks for a stream — text in pieces, each call's arguments split over
  several ``tool_calls`` deltas — with a usage chunk before ``[DONE]`` when asked; else one JSON
  completion. ``usage``: ``(prompt, completion)`` tokens, or None for a server that reports none.
- ``status``: answer with that HTTP error (e.g. 429) and ``message``.
- ``sleep``: wait that many seconds first (a server slower than ``[llm] timeout_seconds``).
- ``cut``: stream the first chunks, then drop the connection before the turn ends.
- ``same_index``: send every tool call at index 0 with its own id (as Ollama does).

It runs in its own thread with its own event loop, so synchronous tests (``main([...])``) and
async ones (the Discord harness) can both use it. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

Turn = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def tool_result(body: dict[str, Any], name: str | None = None) -> str:
    """The content of the last ``tool`` message in a request (of the call to ``name`` if given)."""
    ids = {}
    for message in body["messages"]:
        for call in message.get("tool_calls") or ():
            ids[call["id"]] = call["function"]["name"]
    for message in reversed(body["messages"]):
        if message["role"] == "tool" and (name is None or ids.get(message["tool_call_id"]) == name):
            return message["content"]
    raise AssertionError(f"no tool result for {name}")


class FakeLLM:
    def __init__(self, script: list[Turn] | None = None, *, model: str = "fake-model") -> None:
        self.script: list[Turn] = list(script or [])
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeLLM":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)  # type: ignore[union-attr]

    # -- the endpoint ------------------------------------------------------------------------

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.script:
            return web.json_response({"error": {"message": "the fake's script is used up"}}, status=500)
        turn = self.script.pop(0)
        if callable(turn):
            turn = turn(body)
        if "sleep" in turn:  # a server that does not answer in time
            await asyncio.sleep(turn["sleep"])
        if "status" in turn:
            return web.json_response({"error": {"message": turn.get("message", "scripted error"),
                                                "type": "error"}}, status=turn["status"])
        calls = [(name, args if isinstance(args, str) else json.dumps(args)) for name, args in turn.get("tool_calls", ())]
        usage = turn.get("usage", (120, 30))
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": turn.get("text")}
            if calls:
                message["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                          "function": {"name": n, "arguments": a}} for i, (n, a) in enumerate(calls)]
            reply: dict[str, Any] = {"id": "cmpl", "object": "chat.completion", "created": 0, "model": self.model,
                                     "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
            if usage:
                reply["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                  "total_tokens": usage[0] + usage[1]}
            return web.json_response(reply)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> None:
            chunk = {"id": "cmpl", "object": "chat.completion.chunk", "created": 0, "model": self.model,
                     "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                     **extra}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        text = turn.get("text") or ""
        for start in range(0, len(text), 12):
            await send({"content": text[start:start + 12]})
        for i, (name, args) in enumerate(calls):
            index = 0 if turn.get("same_index") else i
            await send({"tool_calls": [{"index": index, "id": f"call_{i}", "type": "function",
                                        "function": {"name": name, "arguments": ""}}]})
            half = len(args) // 2
            await send({"tool_calls": [{"index": index, "function": {"arguments": args[:half]}}]})
            if turn.get("cut"):
                request.transport.close()  # type: ignore[union-attr]
                return response
            await send({"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]})
        if turn.get("cut"):
            request.transport.close()  # type: ignore[union-attr]
            return response
        await send({}, finish)
        if usage and (body.get("stream_options") or {}).get("include_usage"):
            await send(None, usage={"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                    "total_tokens": usage[0] + usage[1]})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
