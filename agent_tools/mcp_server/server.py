"""The MCP server: every catalog model as a tool, plus the tools to price, follow and cancel jobs.

Built on the SDK's low-level ``Server`` so ``tools/list`` advertises the catalog's schemas exactly
(``schemas.mcp_tool``); the only addition is ``wait_seconds`` on generation tools, defined once in
``WAIT_SECONDS_PROPERTY`` and added by ``generation_input_schema``. Every call goes through the
Toolkit as the account the resolver names: the local account on stdio, the bearer token's account
over HTTP (``http_app`` refuses requests without a valid token with 401).

Long jobs never block past what Claude Desktop tolerates (~60 s): a generation waits at most
``wait_seconds`` (default 45) with progress notifications, then returns the job id for
``wait_for_job``. Errors an LLM can act on (``UserError``: bad arguments, budget, unknown job)
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

import jsonschema
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from .. import __version__
from . import render
from ..catalog import CATALOG, PRICES_AS_OF, Category, ModelSpec, get
from ..errors import InvalidArguments, UserError
from ..jobs import FINAL, Job, JobEvent, JobState
from ..money import format_usd, to_usd
from ..providers.errors import ProviderError
from ..schemas import generation_annotations, mcp_tool
from ..toolkit import Account, Toolkit

log = logging.getLogger(__name__)

SERVER_NAME = "videogen"

# -- the one MCP-only parameter of generation tools ------------------------------------------

WAIT_SECONDS = "wait_seconds"
WAIT_SECONDS_DEFAULT = 45
WAIT_SECONDS_MAX = 55
WAIT_SECONDS_PROPERTY: dict[str, Any] = {
    "type": "integer", "minimum": 0, "maximum": WAIT_SECONDS_MAX, "default": WAIT_SECONDS_DEFAULT,
    "description": (f"How long to wait for the result before returning the job id, in seconds (0–{WAIT_SECONDS_MAX}, "
                    f"default {WAIT_SECONDS_DEFAULT}; 0 returns as soon as the job is submitted). If the job is not "
                    "done by then, call wait_for_job with the returned job_id."),
}
"""Added to every generation tool's advertised schema, after the catalog's own properties."""


def generation_input_schema(spec: ModelSpec) -> dict[str, Any]:
    """The catalog's exact input schema for ``spec`` (``schemas.mcp_tool``) plus ``wait_seconds``."""
    schema = mcp_tool(spec)["inputSchema"]
    if WAIT_SECONDS in schema["properties"]:
        raise RuntimeError(f"{spec.tool} has its own '{WAIT_SECONDS}' parameter; the MCP server needs another name")
    schema["properties"] = {**schema["properties"], WAIT_SECONDS: dict(WAIT_SECONDS_PROPERTY)}
    return schema


# -- schemas of the other tools and of every result --------------------------------------------

def _nullable(kind: str, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [kind, "null"]}
    if description:
        schema["description"] = description
    return schema


BUDGET_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Every limit that applies to the account: money in USD, counts in jobs.",
    "items": {
        "type": "object",
        "properties": {
            "scope": {"type": "string"},
            "kind": {"type": "string", "enum": ["daily", "monthly", "concurrent", "hourly"]},
            "unit": {"type": "string", "enum": ["usd", "jobs"]}, "limit": {"type": "number"},
            "used": {"type": "number"}, "remaining": {"type": "number"},
            "resets_at": _nullable("string", "ISO 8601 time the window ends (money limits only)"),
        },
        "required": ["scope", "kind", "unit", "limit", "used", "remaining"],
    },
}

JOB_STATES = [s.value for s in JobState]

JOB_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string", "description": "Pass to wait_for_job, get_job or cancel_job."},
        "state": {"type": "string", "enum": JOB_STATES},
        "done": {"type": "boolean", "description": "True once the job has finished, whatever the outcome."},
        "tool": {"type": "string"},
        "cost_usd": {"type": "number"},
        "cost_status": {"type": "string", "enum": ["reserved", "charged", "not charged"],
                        "description": "reserved: held from the budget until the job ends; charged only on success."},
        "outputs": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "The provider's URL (expires after hours to days)."},
                "path": _nullable("string", "The kept local copy (stdio only)."),
                "content_type": _nullable("string"), "width": _nullable("integer"), "height": _nullable("integer"),
                "size_bytes": _nullable("integer"),
            },
            "required": ["url"],
        }},
        "seed": _nullable("integer"),
        "queue_position": _nullable("integer", "0 = next in line"),
        "elapsed_seconds": {"type": "number"},
        "error": _nullable("string"),
        "error_kind": _nullable("string"),
        "message": {"type": "string"},
        "next_step": {"type": "string", "description": "What to do now, in a sentence."},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "budget": BUDGET_SCHEMA,
        "simulated": {"type": "boolean"},
    },
    "required": ["job_id", "state", "done", "tool", "cost_usd", "cost_status", "outputs", "next_step"],
}

JOB_ID_PROPERTY = {"type": "string", "minLength": 1, "maxLength": 64,
                   "description": "The job_id a generation tool (or list_jobs) returned."}

LIST_MODELS_INPUT = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": [c.value for c in Category],
                                "description": "Only models of this kind (default: all)."}},
    "additionalProperties": False,
}
LIST_MODELS_OUTPUT = {
    "type": "object",
    "properties": {
        "prices_as_of": {"type": "string"},
        "models": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "tool": {"type": "string"}, "title": {"type": "string"}, "provider": {"type": "string"},
                "category": {"type": "string"}, "output": {"type": "string", "enum": ["video", "images"]},
                "default_cost_usd": {"type": "number"}, "price": {"type": "string"},
                "image_inputs": {"type": "array", "items": {"type": "string"}},
                "when_to_use": {"type": "string"},
            },
            "required": ["tool", "title", "category", "output", "default_cost_usd", "price", "when_to_use"],
        }},
    },
    "required": ["prices_as_of", "models"],
}

ESTIMATE_INPUT = {
    "type": "object",
    "properties": {
        "tool": {"type": "string", "enum": list(CATALOG), "description": "The generation tool to price."},
        "arguments": {"type": "object", "description": (
            "The arguments you would pass to that tool. Fields that never change the price (such as prompt) "
            "may be left out.")},
    },
    "required": ["tool"],
    "additionalProperties": False,
}
ESTIMATE_OUTPUT = {
    "type": "object",
    "properties": {
        "tool": {"type": "string"}, "cost_usd": {"type": "number"}, "formula": {"type": "string"},
        "params": {"type": "object", "description": "The arguments with every default filled in."},
        "missing_required": {"type": "array", "items": {"type": "string"}},
        "fits_budget": {"type": "boolean", "description": "Whether the money limits leave room for it right now."},
        "budget": BUDGET_SCHEMA,
    },
    "required": ["tool", "cost_usd", "formula", "params", "missing_required", "fits_budget", "budget"],
}

JOB_ID_INPUT = {"type": "object", "properties": {"job_id": JOB_ID_PROPERTY}, "required": ["job_id"],
                "additionalProperties": False}
WAIT_INPUT = {"type": "object", "properties": {"job_id": JOB_ID_PROPERTY, WAIT_SECONDS: {
    **WAIT_SECONDS_PROPERTY, "description": (f"How long to wait, in seconds (0–{WAIT_SECONDS_MAX}, default "
                                             f"{WAIT_SECONDS_DEFAULT}); call again if it is still not done.")}},
              "required": ["job_id"], "additionalProperties": False}

LIST_JOBS_INPUT = {
    "type": "object",
    "properties": {
        "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10,
                  "description": "How many, newest first."},
        "all_accounts": {"type": "boolean", "default": False, "description": "Every account's jobs (admins only)."},
    },
    "additionalProperties": False,
}
LIST_JOBS_OUTPUT = {
    "type": "object",
    "properties": {"jobs": {"type": "array", "items": {
        "type": "object",
        "properties": {
            "job_id": {"type": "string"}, "tool": {"type": "string"}, "state": {"type": "string", "enum": JOB_STATES},
            "account": {"type": "string"}, "cost_usd": {"type": "number"}, "cost_status": {"type": "string"},
            "created_at": {"type": "string"}, "output_url": _nullable("string"), "error": _nullable("string"),
        },
        "required": ["job_id", "tool", "state", "cost_usd", "cost_status", "created_at"],
    }}},
    "required": ["jobs"],
}

QUOTA_INPUT = {"type": "object", "properties": {}, "additionalProperties": False}
QUOTA_OUTPUT = {"type": "object", "properties": {"account": {"type": "string"}, "budget": BUDGET_SCHEMA},
                "required": ["account", "budget"]}

READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                  open_world_hint=False)
READ_ONLY_REMOTE = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                         open_world_hint=True)
CANCEL = types.ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                               open_world_hint=True)

INSTRUCTIONS = """\
videogen generates videos and images with hosted models; every generation costs real money from a \
budget with daily and monthly limits.
1. list_models shows each model, what it is good for and its price; estimate_cost prices a run and \
says whether the budget allows it.
2. Call the model's tool. It waits up to wait_seconds (default 45) and returns the result, or a job_id \
if the job is still running: then call wait_for_job (again if needed) instead of starting a new job.
3. Results give the output URL, the cost and the budget left. To animate a generated image, pass its \
URL to an image-to-video tool.
Errors say what was wrong and what is allowed; nothing is charged for a refused or failed request."""

HEARTBEAT_SECONDS = 5.0
PREVIEW_BUDGET_CHARS = 700_000
"""Base64 characters of previews in one result, keeping results far below hosts' 1 MiB limit."""

AccountResolver = Callable[[ServerRequestContext[Any, Any]], Account | Awaitable[Account]]
Handler = Callable[[ServerRequestContext[Any, Any], Account, dict[str, Any]], Awaitable[types.CallToolResult]]


def text_result(text: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured)


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


class _Reporter:
    """Progress notifications for one call: every job event, plus a heartbeat while nothing changes.

    ``report_progress`` is a no-op when the client sent no progressToken, so this always reports.
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

    async def on_event(self, event: JobEvent) -> None:
        self.job = event.job
        await self.say(render.progress_message(event.job, event.message, event.elapsed))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.job is not None and not self.job.finished:
                await self.say(render.progress_message(self.job, "still working",
                                                           self.job.elapsed(time.time())))

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
    """The tools and their handlers; ``.server`` is the SDK ``Server`` to run on a transport."""

    def __init__(self, toolkit: Toolkit, resolve_account: AccountResolver, *, local_files: bool,
                 origin: Mapping[str, Any] | None = None) -> None:
        self.toolkit = toolkit
        self.resolve_account = resolve_account
        self.local_files = local_files
        self.origin = {"surface": "mcp", **(origin or {})}
        self.tools: list[types.Tool] = []
        self.input_schemas: dict[str, dict[str, Any]] = {}
        self._handlers: dict[str, Handler] = {}
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        self._define_tools()
        self.server: Server[Any] = Server(
            SERVER_NAME, version=__version__, title="videogen: video and image generation",
            instructions=INSTRUCTIONS, on_list_tools=self._list_tools, on_call_tool=self._call_tool)

    # -- tool table ---------------------------------------------------------------------------

    def _add(self, name: str, title: str, description: str, input_schema: dict[str, Any],
             output_schema: dict[str, Any], annotations: types.ToolAnnotations, handler: Handler,
             validate: bool = True) -> None:
        # Schemas are checked against the 2020-12 meta-schema by the tests, not here: it costs 150 ms a start.
        self.tools.append(types.Tool(name=name, title=title, description=description, input_schema=input_schema,
                                     output_schema=output_schema, annotations=annotations))
        self.input_schemas[name] = input_schema
        self._handlers[name] = handler
        if validate:
            self._validators[name] = jsonschema.Draft202012Validator(input_schema)

    def _define_tools(self) -> None:
        inputs_note = ("Image inputs take an https:// URL or a local file path (uploaded for you)."
                       if self.local_files else "Image inputs take an https:// URL (local file paths are refused "
                                                "over HTTP: this server cannot read your files).")
        for spec in self.toolkit.list_tools():
            description = (f"{spec.description}\n\nWaits up to {WAIT_SECONDS} (default {WAIT_SECONDS_DEFAULT} s) "
                           f"for the result, else returns a job_id for wait_for_job. "
                           + (inputs_note if spec.media_fields() else ""))
            self._add(spec.tool, spec.title, description.strip(), generation_input_schema(spec), JOB_OUTPUT_SCHEMA,
                      types.ToolAnnotations.model_validate(generation_annotations(spec)),
                      self._generation_handler(spec), validate=False)
        self._add("list_models", "List models and prices",
                  "Every model with what it is good for, its output (video or images) and its price. Use it to "
                  "pick a model; then estimate_cost or call the model's tool.",
                  LIST_MODELS_INPUT, LIST_MODELS_OUTPUT, READ_ONLY, self._list_models)
        self._add("estimate_cost", "Estimate the cost of a run",
                  "The exact price of one run of a model with the given arguments, the formula behind it and "
                  "whether the budget allows it now. Free: nothing is reserved or submitted.",
                  ESTIMATE_INPUT, ESTIMATE_OUTPUT, READ_ONLY, self._estimate)
        self._add("get_job", "Get a job",
                  "A job's state, outputs, cost and error, at once (no waiting).",
                  JOB_ID_INPUT, JOB_OUTPUT_SCHEMA, READ_ONLY_REMOTE, self._get_job)
        self._add("wait_for_job", "Wait for a job",
                  f"Wait up to {WAIT_SECONDS} (default {WAIT_SECONDS_DEFAULT} s) for a job to finish, with "
                  "progress; returns its outputs, or its state if it is still running (call again).",
                  WAIT_INPUT, JOB_OUTPUT_SCHEMA, READ_ONLY_REMOTE, self._wait_for_job)
        self._add("cancel_job", "Cancel a job",
                  "Ask the provider to stop a job. A job cancelled before it finishes costs nothing; one that "
                  "is already running may still finish and be charged (the result says which).",
                  JOB_ID_INPUT, JOB_OUTPUT_SCHEMA, CANCEL, self._cancel_job)
        self._add("list_jobs", "List recent jobs",
                  "Your recent jobs, newest first, with state, cost and output URL.",
                  LIST_JOBS_INPUT, LIST_JOBS_OUTPUT, READ_ONLY, self._list_jobs)
        self._add("get_quota", "Budget and limits",
                  "What you may still spend today and this month, how many jobs may run at once, and when "
                  "each limit resets.", QUOTA_INPUT, QUOTA_OUTPUT, READ_ONLY, self._get_quota)

    # -- protocol handlers --------------------------------------------------------------------

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools)

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any],
                         params: types.CallToolRequestParams) -> types.CallToolResult:
        name = params.name
        handler = self._handlers.get(name)
        if handler is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool '{name}'; tools/list shows the tools.")
        try:
            account = await self._account(ctx)
            arguments = self._check_arguments(name, dict(params.arguments or {}))
            return await handler(ctx, account, arguments)
        except UserError as exc:
            text = str(exc)
            if name in CATALOG and "charged" not in text:
                text += ("\n" if "\n" in text else " ") + "Nothing was submitted or charged."
            return error_result(text)
        except ProviderError as exc:  # e.g. a cancel the provider did not answer: its text is for people
            return error_result(f"{exc.message} Try again in a moment.")
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("tool %s failed unexpectedly (reference %s)", name, reference)
            return error_result(
                f"videogen hit an unexpected internal error running {name} (reference {reference}); the operator "
                "can find it in the server log. If a job was started, list_jobs shows it and its cost.")

    def _check_arguments(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """JSON-string values for array/object fields are parsed (some hosts send them so); status tools
        are checked against their schema and get their defaults. Generation tools are checked by the
        catalog's own validation, which names every problem and the allowed values."""
        schema = self.input_schemas[name]
        for key, value in list(arguments.items()):
            prop = schema["properties"].get(key, {})
            kinds = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", ())}
            if isinstance(value, str) and kinds & {"array", "object"}:
                with contextlib.suppress(ValueError):
                    parsed = json.loads(value)
                    if isinstance(parsed, (list, dict)):
                        arguments[key] = parsed
        validator = self._validators.get(name)
        if validator is None:
            return arguments
        errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.path])
        problems = [_problem(e) for e in errors]
        if problems:
            raise InvalidArguments(name, problems)
        defaults = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
        return defaults | arguments

    async def _account(self, ctx: ServerRequestContext[Any, Any]) -> Account:
        account = self.resolve_account(ctx)
        return await account if inspect.isawaitable(account) else account

    # -- generation ---------------------------------------------------------------------------

    def _generation_handler(self, spec: ModelSpec) -> Handler:
        async def handler(ctx: ServerRequestContext[Any, Any], account: Account,
                          arguments: dict[str, Any]) -> types.CallToolResult:
            wait = _wait_seconds(spec, arguments)
            reporter = _Reporter(ctx)
            await reporter.say(f"[submitting · 0 s] reserving {spec.title.split(' — ')[0]} and sending it to "
                               f"{spec.provider.value}")
            started = time.monotonic()
            async with reporter.heartbeat():
                job = await self.toolkit.generate(account, spec.tool, arguments, wait=0, on_event=reporter.on_event,
                                                  allow_local_files=self.local_files, origin=self.origin)
                reporter.job = job
                warnings = self.toolkit.warnings.pop(job.id, ())
                remaining = wait - (time.monotonic() - started)
                if not job.finished and remaining > 0:
                    job = await self.toolkit.wait_for_job(account, job.id, timeout=remaining,
                                                          on_event=reporter.on_event)
            return await self._job_result(account, job, warnings=warnings, failure_is_error=True)
        return handler

    async def _job_result(self, account: Account, job: Job, *, warnings: tuple[str, ...] | list[str] = (),
                          message: str | None = None, failure_is_error: bool = False) -> types.CallToolResult:
        """The job as text + structured content (+ previews). ``failure_is_error``: a generation (or the wait
        for one) that failed or ended unknown is an ``isError`` result, so the model does not carry on."""
        limits = await self.toolkit.quota_status(account)
        now, tz = self._now(), self.toolkit.ledger.tz
        structured = render.job_structured(job, now=now, show_paths=self.local_files, limits=limits,
                                               warnings=warnings, message=message)
        text = render.job_text(job, now=now, show_paths=self.local_files, limits=limits, tz=tz,
                                   warnings=warnings, message=message)
        content: list[types.ContentBlock] = [types.TextContent(type="text", text=text)]
        content += await self._previews(job)
        failed = failure_is_error and job.state in (JobState.FAILED, JobState.UNKNOWN)
        return types.CallToolResult(content=content, structured_content=structured, is_error=failed)

    async def _previews(self, job: Job) -> list[types.ContentBlock]:
        """Small PNG previews of finished images, so the agent can look before animating one."""
        if job.state is not JobState.SUCCEEDED or CATALOG.get(job.tool) is None \
                or CATALOG[job.tool].output.kind.value != "images":
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

    def _now(self) -> float:
        clock = getattr(self.toolkit.ledger, "clock", None)
        return clock() if callable(clock) else time.time()

    # -- jobs ---------------------------------------------------------------------------------

    async def _get_job(self, ctx: ServerRequestContext[Any, Any], account: Account,
                       arguments: dict[str, Any]) -> types.CallToolResult:
        return await self._job_result(account, await self.toolkit.get_job(account, arguments["job_id"]))

    async def _wait_for_job(self, ctx: ServerRequestContext[Any, Any], account: Account,
                            arguments: dict[str, Any]) -> types.CallToolResult:
        job = await self.toolkit.get_job(account, arguments["job_id"])
        if not job.finished and arguments[WAIT_SECONDS] > 0:
            reporter = _Reporter(ctx)
            reporter.job = job
            await reporter.say(render.progress_message(job, "waiting", job.elapsed(time.time())))
            async with reporter.heartbeat():
                job = await self.toolkit.wait_for_job(account, job.id, timeout=arguments[WAIT_SECONDS],
                                                      on_event=reporter.on_event)
        return await self._job_result(account, job, failure_is_error=True)

    async def _cancel_job(self, ctx: ServerRequestContext[Any, Any], account: Account,
                          arguments: dict[str, Any]) -> types.CallToolResult:
        job, message = await self.toolkit.cancel_job(account, arguments["job_id"])
        return await self._job_result(account, job, message=message)

    async def _list_jobs(self, ctx: ServerRequestContext[Any, Any], account: Account,
                         arguments: dict[str, Any]) -> types.CallToolResult:
        jobs = await self.toolkit.list_jobs(account, limit=arguments["limit"], all_accounts=arguments["all_accounts"])
        if not jobs:
            return text_result("No jobs yet.", {"jobs": []})
        tz = self.toolkit.ledger.tz
        lines = [f"{len(jobs)} most recent job(s), newest first:"] + [render.job_line(j, tz=tz) for j in jobs]
        unfinished = [j.id for j in jobs if j.state not in FINAL]
        if unfinished:
            lines.append(f"Unfinished: {', '.join(unfinished)} — wait_for_job follows one.")
        return text_result("\n".join(lines), {"jobs": [render.job_summary(j) for j in jobs]})

    # -- catalog and budget -------------------------------------------------------------------

    async def _list_models(self, ctx: ServerRequestContext[Any, Any], account: Account,
                           arguments: dict[str, Any]) -> types.CallToolResult:
        category = arguments.get("category")
        models, lines = [], []
        for spec in self.toolkit.list_tools():
            if category and spec.category.value != category:
                continue
            quote = spec.default_quote(self.toolkit.settings.price_overrides(spec.tool))
            models.append({"tool": spec.tool, "title": spec.title, "provider": spec.provider.value,
                           "category": spec.category.value, "output": spec.output.kind.value,
                           "default_cost_usd": to_usd(quote.micros), "price": spec.price_unit,
                           "image_inputs": list(spec.media_fields()), "when_to_use": spec.summary})
            lines.append(f"- {spec.tool} ({spec.category.value}; default run {quote.usd}, {spec.price_unit}): "
                         f"{_first_sentence(spec.summary)}")
        head = f"{len(models)} model(s); list prices as of {PRICES_AS_OF}. estimate_cost prices exact arguments."
        return text_result("\n".join([head, *lines]), {"prices_as_of": PRICES_AS_OF, "models": models})

    async def _estimate(self, ctx: ServerRequestContext[Any, Any], account: Account,
                        arguments: dict[str, Any]) -> types.CallToolResult:
        spec = get(arguments["tool"])
        given = {k: v for k, v in (arguments.get("arguments") or {}).items() if k != WAIT_SECONDS}
        params, missing = spec.validate_for_pricing(given)
        quote = spec.price(params, self.toolkit.settings.price_overrides(spec.tool))
        limits = await self.toolkit.quota_status(account)
        left = render.money_left(limits)
        fits = left is None or left >= quote.micros
        shown = {k: v for k, v in params.public_params().items() if k not in missing}
        lines = [f"{spec.tool}: {quote.usd} ({quote.formula}).",
                 render.budget_text(limits, self._now(), self.toolkit.ledger.tz)]
        if not fits:
            lines.append(f"That is more than the {format_usd(left or 0)} left: pick a cheaper model or shorter "
                         "duration, or wait for the budget to reset.")
        if missing:
            lines.append(f"To run it you will also need: {', '.join(missing)}.")
        return text_result("\n".join(lines), {
            "tool": spec.tool, "cost_usd": to_usd(quote.micros), "formula": quote.formula, "params": shown,
            "missing_required": missing, "fits_budget": fits, "budget": render.budget_items(limits)})

    async def _get_quota(self, ctx: ServerRequestContext[Any, Any], account: Account,
                         arguments: dict[str, Any]) -> types.CallToolResult:
        limits = await self.toolkit.quota_status(account)
        lines = [f"Limits for account '{account.name}':",
                 *render.quota_lines(limits, self._now(), self.toolkit.ledger.tz)]
        return text_result("\n".join(lines), {"account": account.name, "budget": render.budget_items(limits)})


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end == -1 else text[:end + 1]


def _problem(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.path) or "arguments"
    return f"{where}: {error.message}"


def _wait_seconds(spec: ModelSpec, arguments: dict[str, Any]) -> int:
    """Take ``wait_seconds`` out of the arguments; a bad value is reported with the model's own problems."""
    value = arguments.pop(WAIT_SECONDS, WAIT_SECONDS_DEFAULT)
    if isinstance(value, str) and value.strip().isdigit():  # some hosts send numbers as strings
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= WAIT_SECONDS_MAX:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value <= WAIT_SECONDS_MAX:
        return int(value)
    problems = [f"{WAIT_SECONDS}: {json.dumps(value)} is not allowed; expected an integer from 0 to "
                f"{WAIT_SECONDS_MAX} (default {WAIT_SECONDS_DEFAULT})"]
    try:
        spec.validate(arguments)
    except InvalidArguments as exc:
        problems += exc.problems
    raise InvalidArguments(spec.tool, problems)


# -- building and running ---------------------------------------------------------------------------

def build_server(toolkit: Toolkit, resolve_account: AccountResolver, *, local_files: bool,
                 origin: Mapping[str, Any] | None = None) -> Server[Any]:
    """The SDK server for a Toolkit. ``resolve_account(ctx)`` names who is calling; ``local_files``
    allows local image paths and shows kept files' paths (stdio only, never over HTTP)."""
    return VideogenServer(toolkit, resolve_account, local_files=local_files, origin=origin).server


async def serve_stdio(toolkit: Toolkit, *, origin: Mapping[str, Any] | None = None) -> None:
    """Serve on stdin/stdout as the local account until the client closes stdin."""
    from mcp.server.stdio import stdio_server

    local = toolkit.local_account()
    server = build_server(toolkit, lambda ctx: local, local_files=True, origin={"transport": "stdio", **(origin or {})})
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


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
        self.toolkit = toolkit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
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


def http_app(toolkit: Toolkit, *, host: str = "127.0.0.1", origin: Mapping[str, Any] | None = None) -> Any:
    """The ASGI app: streamable HTTP at ``/mcp`` behind ``BearerAuth``; local paths refused."""
    server = build_server(toolkit, request_account, local_files=False, origin={"transport": "http", **(origin or {})})
    return BearerAuth(server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host), toolkit)


def _uvicorn(toolkit: Toolkit, host: str, port: int, origin: Mapping[str, Any] | None,
             log_level: str) -> tuple[Any, socket.socket, str]:
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"Cannot listen on {host}:{port} ({exc.strerror}); pick another --port.") from None
    bound = sock.getsockname()[1]
    config = uvicorn.Config(http_app(toolkit, host=host, origin=origin), host=host, port=bound,
                            log_level=log_level, access_log=False, lifespan="on")
    shown = f"[{host}]" if ":" in host else host
    return uvicorn.Server(config), sock, f"http://{shown}:{bound}{HTTP_PATH}"


async def serve_http(toolkit: Toolkit, host: str, port: int, *, origin: Mapping[str, Any] | None = None,
                     on_ready: Callable[[str], None] | None = None, log_level: str = "info") -> None:
    """Serve streamable HTTP until interrupted (Ctrl-C / SIGTERM); ``on_ready(url)`` once listening."""
    server, sock, url = _uvicorn(toolkit, host, port, origin, log_level)
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
                       origin: Mapping[str, Any] | None = None, log_level: str = "warning") -> AsyncIterator[str]:
    """Serve HTTP in this event loop while the block runs; yields the endpoint URL (port 0: a free one)."""
    server, sock, url = _uvicorn(toolkit, host, port, origin, log_level)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the HTTP server stopped before it started")
            await asyncio.sleep(0.01)
        yield url
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
