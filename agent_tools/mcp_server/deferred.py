"""The stdio server answers the handshake first and opens its Toolkit right after (issue 11).

A client (Claude Desktop) starts ``videogen mcp`` and waits for ``initialize`` and ``tools/list``.
Neither needs the database, the job engine, the ledger or the catalog's models: the server's
identity is fixed and the tool list is pre-generated (``agent.definitions``). So ``serve_stdio``
answers them from this module, which imports none of those, and opens the Toolkit (the database,
resuming unfinished jobs) and builds the full ``VideogenServer`` once the tool list is out, or at
once when a request needs it, or after ``OPEN_AT_LATEST_SECONDS`` if the client lists no tools.

An unusable database is still found at start, a moment later: the reason is logged on stderr
(``error: …``) as soon as the open fails, and every request that needs the Toolkit gets it —
a tool call as an ``isError`` result, anything else as a JSON-RPC error — instead of a server
that exits before the client can say why. A bad configuration still stops the start (the
settings are read before anything is served).

The handshake's answer itself (name, instructions, capabilities) comes from ``handshake``, as the
full server's does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR

from ..agent import Mode
from ..errors import UserError
from .handshake import error_result, sdk_server

if TYPE_CHECKING:
    from ..config import Settings
    from .server import VideogenServer

log = logging.getLogger(__name__)

OPEN_AFTER_LIST_SECONDS = 0.02
"""After answering ``tools/list``, how long to leave the loop to writing that answer before the
Toolkit's opening (imports and the database, ~35 ms of CPU that holds the loop) starts."""
OPEN_AT_LATEST_SECONDS = 1.0
"""A client that lists no tools still has the database opened (and checked) this soon."""


def wire_tools(mode: Mode) -> list[types.Tool]:
    """The tools ``tools/list`` advertises in ``mode``: from the pre-generated definitions, or (if
    they are missing) built from the catalog as the full server does."""
    from ..agent import definitions

    entries = definitions.load(mode)
    if entries is None:
        from ..agent.tools import mcp_definition, tool_set

        return [types.Tool.model_validate(mcp_definition(tool)) for tool in tool_set(mode)]
    return [types.Tool.model_validate(definitions.mcp_wire(entry)) for entry in entries]


class Unavailable(Exception):
    """The Toolkit could not be opened; the text says why, for the client."""


class DeferredServer:
    """The stdio server before and after its Toolkit is open: ``tools/list`` is answered from the
    pre-generated tools; every other request waits for the ``VideogenServer`` that ``open_backend``
    makes (started by the first such request, or soon after the tool list) and is handled by it."""

    def __init__(self, tools: list[types.Tool], open_backend: Callable[[], Awaitable[VideogenServer]]) -> None:
        self.tools = tools
        self._open_backend = open_backend
        self._task: asyncio.Task[VideogenServer | str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.server: Server[Any] = sdk_server(self, local_files=True)

    # -- the Toolkit ---------------------------------------------------------------------------

    def open_soon(self, delay: float) -> None:
        """Start opening in ``delay`` seconds, unless it has started (or is due sooner)."""
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            if self._timer.when() <= loop.time() + delay:
                return
            self._timer.cancel()
        self._timer = loop.call_later(delay, self.open)

    def open(self) -> asyncio.Task[VideogenServer | str]:
        """Start opening now (once); the task's result is the server, or why it could not be made."""
        if self._task is None:
            if self._timer is not None:
                self._timer.cancel()
            self._task = asyncio.get_running_loop().create_task(self._opened())
        return self._task

    async def _opened(self) -> VideogenServer | str:
        try:
            return await self._open_backend()
        except UserError as exc:  # e.g. DatabaseUnavailable: a corrupt, locked or newer database
            reason = str(exc)
        except Exception as exc:
            log.exception("opening the database failed")
            reason = f"{type(exc).__name__}: {exc}"
        print(f"error: {reason}", file=sys.stderr, flush=True)
        return (f"videogen cannot serve this request: {reason} Fix it, then restart the MCP server "
                "(in Claude Desktop: quit and start it again).")

    async def backend(self) -> VideogenServer:
        """The full server, once open; raises ``Unavailable`` if it cannot be."""
        outcome = await asyncio.shield(self.open())
        if isinstance(outcome, str):
            raise Unavailable(outcome)
        return outcome

    async def aclose(self) -> None:
        """Stop a pending open; finish one under way and close what it opened."""
        if self._timer is not None:
            self._timer.cancel()
        if self._task is None:
            return
        outcome = await self._task
        if not isinstance(outcome, str):
            await outcome.toolkit.close()

    async def _backend_or_error(self) -> VideogenServer:
        try:
            return await self.backend()
        except Unavailable as exc:
            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None

    # -- protocol handlers ---------------------------------------------------------------------

    async def list_tools(self, ctx: ServerRequestContext[Any, Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        self.open_soon(OPEN_AFTER_LIST_SECONDS)  # the handshake is done: open once this answer is out
        return types.ListToolsResult(tools=self.tools)

    async def call_tool(self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
                         ) -> types.CallToolResult | types.InputRequiredResult:
        try:
            backend = await self.backend()
        except Unavailable as exc:
            return error_result(str(exc))
        return await backend.call_tool(ctx, params)

    async def list_resources(self, ctx: ServerRequestContext[Any, Any],
                              params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return await (await self._backend_or_error()).list_resources(ctx, params)

    async def list_resource_templates(self, ctx: ServerRequestContext[Any, Any],
                                       params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
        return await (await self._backend_or_error()).list_resource_templates(ctx, params)

    async def read_resource(self, ctx: ServerRequestContext[Any, Any],
                             params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await (await self._backend_or_error()).read_resource(ctx, params)

    async def list_prompts(self, ctx: ServerRequestContext[Any, Any],
                            params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return await (await self._backend_or_error()).list_prompts(ctx, params)

    async def get_prompt(self, ctx: ServerRequestContext[Any, Any],
                          params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return await (await self._backend_or_error()).get_prompt(ctx, params)

    async def complete(self, ctx: ServerRequestContext[Any, Any],
                        params: types.CompleteRequestParams) -> types.CompleteResult:
        return await (await self._backend_or_error()).complete(ctx, params)


def stdio_server_for(settings: Settings, *, origin: Mapping[str, Any] | None = None,
                     key_hints: Mapping[str, str] | None = None) -> DeferredServer:
    """The stdio server for ``settings``, as the local account, its Toolkit not yet open."""

    async def open_backend() -> VideogenServer:
        from ..toolkit import Toolkit
        from .server import VideogenServer

        toolkit = await Toolkit.open(settings)
        try:
            toolkit.missing_key_hints.update(key_hints or {})
            local = toolkit.local_account()
            return VideogenServer(toolkit, lambda ctx: local, local_files=True,
                                  origin={"transport": "stdio", **(origin or {})}, tools=settings.mcp.tools)
        except BaseException:
            await toolkit.close()
            raise

    return DeferredServer(wire_tools(settings.mcp.tools), open_backend)


async def serve_deferred_stdio(settings: Settings, *, origin: Mapping[str, Any] | None = None,
                               key_hints: Mapping[str, str] | None = None) -> None:
    """Serve on stdin/stdout as the local account until the client closes stdin, opening the
    Toolkit once the handshake is answered; closes it (if it was opened) before returning."""
    from mcp.server.stdio import stdio_server

    from . import unreadable

    front = stdio_server_for(settings, origin=origin, key_hints=key_hints)
    front.open_soon(OPEN_AT_LATEST_SECONDS)
    try:
        async with stdio_server() as (read, write):
            forward, readable = unreadable.relay()
            async with anyio.create_task_group() as group:
                group.start_soon(unreadable.answer_unreadable, read, write, forward)
                await front.server.run(readable, write, front.server.create_initialization_options())
                group.cancel_scope.cancel()
    finally:
        await front.aclose()
