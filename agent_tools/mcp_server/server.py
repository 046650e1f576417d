"""The MCP server: the agent tools (``agent.tools``) over stdio or streamable HTTP.

Built on the SDK's low-level ``Server`` so ``tools/list`` advertises exact schemas. Two tool sets:
``default`` (every catalog model as its own tool, plus the catalog, cost, job and quota tools) and
``compact`` (``list_models``, ``describe_model``, ``generate`` and the same job, cost and quota
tools), chosen with ``videogen mcp --tools`` or ``[mcp] tools``. Every call goes through
``agent.Executor`` as the account the resolver names: the local account on stdio, the bearer
token's account over HTTP (``http_app`` refuses requests without a valid token with 401).

Long jobs never block past what Claude Desktop tolerates (~60 s): a generation waits at most
``wait_seconds`` (default 45) with progress notifications that name the job from the first one,
then returns the job id for ``wait_for_job``. A client that cancels a generation call cancels its
job at the provider. Errors an LLM can act on (``UserError``: bad arguments, budget, unknown job)
come back as ``isError`` results with that text; anything unexpected is logged here and answered
with a generic message that carries a reference, never internals.

    server = build_server(toolkit, lambda ctx: toolkit.local_account(), local_files=True)
    await serve_stdio(toolkit)                       # Claude Desktop
    async with running_http(toolkit, "127.0.0.1", 8765) as url: ...   # remote agents
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from . import confirm, prompts, render, resources, unreadable
from .handshake import error_result, sdk_server
from ..agent import results
from ..agent.executor import Executor, ToolResult
from ..agent.tools import AgentTool, Mode, mcp_definition
from .resources import JobResources
from ..catalog import CATALOG, OutputKind
from ..errors import UserError
from ..jobs import Job, JobEvent, JobState
from ..money import usd
from ..serving import Prefixed, base_url, bind, running
from ..toolkit import Account, Toolkit

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
PREVIEW_BUDGET_CHARS = 700_000
"""Base64 characters of previews in one result, keeping results far below hosts' 1 MiB limit."""

AccountResolver = Callable[[ServerRequestContext[Any, Any]], Account | Awaitable[Account]]


class _Reporter:
    """Progress notifications for one call: every job event, plus a heartbeat while nothing changes.

    Every message names the job (``[queued · 3 s] job 1f2e…: …``), the first one included, so a
    client can follow or cancel it. ``report_progress`` is a no-op when the client sent no
    progressToken, so this always reports.
    """

    def __init__(self, ctx: ServerRequestContext[Any, Any], interval: float | None = None) -> None:
        self.ctx = ctx
        self.interval = interval or HEARTBEAT_SECONDS
        self.start = time.monotonic()
        self.last = 0.0
        self.job: Job | None = None

    async def say(self, message: str) -> None:
        value = max(round(time.monotonic() - self.start, 1), round(self.last + 0.1, 1))
        self.last = value
        try:
            await self.ctx.session.report_progress(value, None, message)
        except Exception:  # a client that went away must not break the job
            log.debug("progress notification failed", exc_info=True)

    async def on_job(self, job: Job) -> None:
        self.job = job
        await self.say(results.progress_message(job, f"reserved {results.cost_text(job)}; sending it to "
                                                     f"{job.provider}", 0))

    async def on_event(self, event: JobEvent) -> None:
        self.job = event.job
        await self.say(results.progress_message(event.job, event.message, event.elapsed))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.job is not None and not self.job.finished:
                await self.say(results.progress_message(self.job, "still working", self.job.elapsed(time.time())))

    @contextlib.asynccontextmanager
    async def heartbeat(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._heartbeat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class VideogenServer:
    """The tool table and its handlers; ``.server`` is the SDK ``Server`` to run on a transport."""

    def __init__(self, toolkit: Toolkit, resolve_account: AccountResolver, *, local_files: bool,
                 origin: Mapping[str, Any] | None = None, tools: Mode = "default") -> None:
        self.toolkit = toolkit
        self.resolve_account = resolve_account
        self.local_files = local_files
        self.origin = {"surface": "mcp", **(origin or {})}
        self.executor = Executor(toolkit, mode=tools, local_files=local_files, origin=self.origin)
        self.tools: list[types.Tool] = [self._wire_tool(t) for t in self.executor.tools.values()]
        self.resources = JobResources(toolkit, show_paths=local_files)
        threshold = toolkit.settings.mcp.confirm_above_usd
        self.confirm_above = None if threshold is None else usd(threshold)
        self.prompt_call = "call generate with model \"{tool}\"" if tools == "compact" else "call the {tool} tool"
        self.server: Server[Any] = sdk_server(self, local_files=local_files)

    @staticmethod
    def _wire_tool(tool: AgentTool) -> types.Tool:
        return types.Tool.model_validate(mcp_definition(tool))

    # -- protocol handlers --------------------------------------------------------------------

    async def list_tools(self, ctx: ServerRequestContext[Any, Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools)

    async def call_tool(self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
                         ) -> types.CallToolResult | types.InputRequiredResult:
        name = params.name
        tool = self.executor.tools.get(name)
        if tool is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool '{name}'; tools/list shows the tools.")
        try:
            account = await self._account(ctx)
            refusal = await self._confirm(ctx, params)
            if refusal is not None:
                return refusal
            reporter = _Reporter(ctx)
            if tool.generates or name == "wait_for_job":
                async with reporter.heartbeat():
                    outcome = await self.executor.call(account, name, params.arguments,
                                                       on_event=reporter.on_event, on_job=reporter.on_job)
            else:
                outcome = await self.executor.call(account, name, params.arguments)
            return await self._result(outcome)
        except UserError as exc:  # e.g. the account resolver refusing
            return error_result(str(exc))
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("tool %s failed unexpectedly (reference %s)", name, reference)
            return error_result(
                f"videogen hit an unexpected internal error running {name} (reference {reference}); the operator "
                "can find it in the server log. If a job was started, list_jobs shows it and its cost.")

    # -- resources, prompts, completions ----------------------------------------------------------

    async def list_resources(self, ctx: ServerRequestContext[Any, Any],
                              params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=await self.resources.list(await self._account(ctx)))

    async def list_resource_templates(self, ctx: ServerRequestContext[Any, Any],
                                       params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=resources.templates())

    async def read_resource(self, ctx: ServerRequestContext[Any, Any],
                             params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await self.resources.read(await self._account(ctx), params.uri)

    async def list_prompts(self, ctx: ServerRequestContext[Any, Any],
                            params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=prompts.prompts())

    async def get_prompt(self, ctx: ServerRequestContext[Any, Any],
                          params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return prompts.get_prompt(params.name, params.arguments, call=self.prompt_call)

    async def complete(self, ctx: ServerRequestContext[Any, Any],
                        params: types.CompleteRequestParams) -> types.CompleteResult:
        account = await self._account(ctx)
        return await prompts.complete(params, lambda prefix: self.resources.job_ids(account, prefix))

    async def _confirm(self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
                       ) -> types.CallToolResult | types.InputRequiredResult | None:
        """None to go ahead; else what to answer instead (the question, or the refusal)."""
        if self.confirm_above is None or not confirm.supported(ctx):
            return None
        priced = self.executor.quote(params.name, params.arguments)
        if priced is None or priced[1].micros <= self.confirm_above:
            return None
        spec, quote = priced
        answer = await confirm.ask(ctx, params, spec, quote)
        if answer is True:
            return None
        if answer is False:
            return error_result(f"Not run: the {quote.usd} run of {spec.tool} was not confirmed. Nothing was "
                                "submitted or charged.")
        return answer

    async def _account(self, ctx: ServerRequestContext[Any, Any]) -> Account:
        account = self.resolve_account(ctx)
        return await account if inspect.isawaitable(account) else account

    # -- results ------------------------------------------------------------------------------

    async def _result(self, outcome: ToolResult) -> types.CallToolResult:
        """Text + structured content, and for a finished job its image previews."""
        content: list[types.ContentBlock] = [types.TextContent(type="text", text=outcome.text)]
        if outcome.job is not None:
            content += resources.links(outcome.job)
            content += await self._previews(outcome.job)
        return types.CallToolResult(content=content, structured_content=outcome.data, is_error=outcome.is_error)

    async def _previews(self, job: Job) -> list[types.ContentBlock]:
        """Small PNG previews of finished images, so the agent can look before animating one."""
        if job.state is not JobState.SUCCEEDED or CATALOG.get(job.tool) is None \
                or CATALOG[job.tool].output.kind is not OutputKind.IMAGES:
            return []
        paths = [o.get("path") for o in job.outputs if o.get("path")]
        side = {1: 256, 2: 192}.get(len(paths), 128)
        blocks: list[types.ContentBlock] = []
        used = 0
        for index, path in enumerate(paths):
            data = await asyncio.to_thread(render.png_preview, path, side)
            if data is None:
                continue
            encoded = base64.b64encode(data).decode("ascii")
            if used + len(encoded) > PREVIEW_BUDGET_CHARS:
                break
            used += len(encoded)
            label = f"image {index + 1}" if len(paths) > 1 else "the image"
            blocks.append(types.TextContent(type="text", text=f"Preview of {label} (downscaled):"))
            blocks.append(types.ImageContent(type="image", data=encoded, mime_type="image/png"))
        return blocks


# -- building and running ---------------------------------------------------------------------------

def build_server(toolkit: Toolkit, resolve_account: AccountResolver, *, local_files: bool,
                 origin: Mapping[str, Any] | None = None, tools: Mode | None = None) -> Server[Any]:
    """The SDK server for a Toolkit. ``resolve_account(ctx)`` names who is calling; ``local_files``
    allows local image paths and shows kept files' paths (stdio only, never over HTTP); ``tools``
    is the tool set (default: ``[mcp] tools`` of the toolkit's settings)."""
    return VideogenServer(toolkit, resolve_account, local_files=local_files, origin=origin,
                          tools=tools or toolkit.settings.mcp.tools).server


async def serve_stdio(toolkit: Toolkit, *, origin: Mapping[str, Any] | None = None) -> None:
    """Serve on stdin/stdout as the local account until the client closes stdin, with an open Toolkit.
    (``videogen mcp`` uses ``deferred.serve_deferred_stdio``: the same server, whose Toolkit opens
    once the handshake is answered.)"""
    from mcp.server.stdio import stdio_server

    local = toolkit.local_account()
    server = build_server(toolkit, lambda ctx: local, local_files=True, origin={"transport": "stdio", **(origin or {})})
    async with stdio_server() as (read, write):
        forward, readable = unreadable.relay()
        async with anyio.create_task_group() as group:
            group.start_soon(unreadable.answer_unreadable, read, write, forward)
            await server.run(readable, write, server.create_initialization_options())
            group.cancel_scope.cancel()


# -- HTTP: bearer tokens --------------------------------------------------------------------------

ACCOUNT_SCOPE_KEY = "videogen.account"
HTTP_PATH = "/mcp"


def request_account(ctx: ServerRequestContext[Any, Any]) -> Account:
    """The account ``BearerAuth`` attached to the HTTP request that carried this message."""
    request = ctx.request
    account = getattr(request, "scope", {}).get(ACCOUNT_SCOPE_KEY) if request is not None else None
    if not isinstance(account, Account):
        raise RuntimeError("an MCP request reached a tool without an authenticated account")
    return account


class BearerAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>`` of an account."""

    def __init__(self, app: Any, toolkit: Toolkit) -> None:
        self.app = app
        from ..webhooks.mount import starlette_route  # HTTP only: a stdio server never receives callbacks

        self.toolkit = toolkit
        self.webhooks = starlette_route(lambda: toolkit.webhooks)
        """Provider callbacks prove themselves by their signature, not a bearer token."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path", "").startswith("/webhooks/"):
            await self.webhooks(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"), "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        account = None
        if scheme.lower() == "bearer" and token:
            account = await self.toolkit.account_for_token(token)
        if account is None:
            await _unauthorized(send, "The bearer token is not valid (unknown or revoked)." if token else
                                "This server needs 'Authorization: Bearer <token>'.")
            return
        scope[ACCOUNT_SCOPE_KEY] = account
        await self.app(scope, receive, send)


async def _unauthorized(send: Any, problem: str) -> None:
    body = json.dumps({"error": "invalid_token", "error_description": (
        f"{problem} An operator creates a token with `videogen accounts token ACCOUNT`.")}).encode()
    await send({"type": "http.response.start", "status": 401, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="videogen", error="invalid_token"')]})
    await send({"type": "http.response.body", "body": body})


RETRY_MS = 1000
"""How soon a client whose SSE stream dropped should reconnect (the priming event's ``retry``)."""


def http_app(toolkit: Toolkit, *, host: str = "127.0.0.1", origin: Mapping[str, Any] | None = None,
             mounts: Mapping[str, Any] | None = None, event_store: Any = None) -> Any:
    """The ASGI app: streamable HTTP at ``/mcp`` behind ``BearerAuth``; local paths refused.
    ``mounts`` (prefix → ASGI app, e.g. the dashboard) are served beside it, outside bearer auth.
    Streams are resumable with ``Last-Event-ID`` (``event_store``, default an in-memory one)."""
    from .events import MemoryEventStore

    server = build_server(toolkit, request_account, local_files=False, origin={"transport": "http", **(origin or {})})
    # stateless: every request stands alone (no session in this process's memory), so replicas
    # behind a load balancer need no sticky sessions; jobs live in the database either way.
    app = BearerAuth(server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host,
                                                event_store=event_store or MemoryEventStore(),
                                                retry_interval=RETRY_MS,
                                                stateless_http=toolkit.settings.mcp.stateless_http), toolkit)
    return Prefixed(app, mounts) if mounts else app


def _uvicorn(toolkit: Toolkit, host: str, port: int, origin: Mapping[str, Any] | None,
             log_level: str, mounts: Mapping[str, Any] | None = None) -> tuple[Any, socket.socket, str]:
    import uvicorn

    sock = bind(host, port)
    config = uvicorn.Config(http_app(toolkit, host=host, origin=origin, mounts=mounts), host=host,
                            port=sock.getsockname()[1], log_level=log_level, access_log=False, lifespan="on")
    return uvicorn.Server(config), sock, base_url(host, sock) + HTTP_PATH


async def serve_http(toolkit: Toolkit, host: str, port: int, *, origin: Mapping[str, Any] | None = None,
                     on_ready: Callable[[str], None] | None = None, log_level: str = "info",
                     mounts: Mapping[str, Any] | None = None) -> None:
    """Serve streamable HTTP until interrupted (Ctrl-C / SIGTERM); ``on_ready(url)`` once listening."""
    server, sock, url = _uvicorn(toolkit, host, port, origin, log_level, mounts)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(url)
        await task
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


@contextlib.asynccontextmanager
async def running_http(toolkit: Toolkit, host: str = "127.0.0.1", port: int = 0, *,
                       origin: Mapping[str, Any] | None = None, log_level: str = "warning",
                       mounts: Mapping[str, Any] | None = None) -> AsyncIterator[str]:
    """Serve HTTP in this event loop while the block runs; yields the endpoint URL (port 0: a free one)."""
    app = http_app(toolkit, host=host, origin=origin, mounts=mounts)
    async with running(app, host, port, log_level=log_level) as url:
        yield url + HTTP_PATH
