"""``Executor.call(account, name, arguments)``: run one agent tool through the Toolkit.

The same calls back the MCP server (both tool sets) and any other agent loop: arguments are checked
against the tool's schema (a model's own arguments by the catalog, which names every problem and
the allowed values), a ``UserError`` comes back as an error result the model can act on, and a
generation follows its job for at most ``wait_seconds``.

A generation whose caller gives up (the task is cancelled: an MCP client's
``notifications/cancelled``, a user pressing stop) cancels its job at the provider exactly as
``cancel_job`` does, so an abandoned call never leaves a paid job running unseen.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ..catalog import CATALOG, PRICES_AS_OF, ModelSpec, Quote, get
from ..errors import InvalidArguments, UserError
from ..inputs import shape_problems
from ..jobs import FINAL, EventCallback, Job, JobEvent, JobState
from ..money import ceiling_micros, format_usd, to_usd
from ..providers.errors import ProviderError
from ..toolkit import Account, Toolkit
from . import results
from .schemas import WAIT_SECONDS, WAIT_SECONDS_DEFAULT, WAIT_SECONDS_MAX
from .tools import AgentTool, Mode, first_sentence, tool_set

if TYPE_CHECKING:
    import jsonschema  # imported by the first call that validates: it costs ~100 ms at a server's start

JobCallback = Callable[[Job], Awaitable[None]]


@dataclass
class ToolResult:
    """What a tool call gives back: text for the model, JSON data, and the job it is about (if any)."""

    text: str
    data: dict[str, Any] | None = None
    is_error: bool = False
    job: Job | None = None
    warnings: tuple[str, ...] = field(default=())


class UnknownAgentTool(KeyError):
    """A tool name that is not in this executor's tool set (a protocol error, not a model mistake)."""


class Executor:
    """One tool set bound to a Toolkit. ``local_files``: image inputs may be local paths, and results
    show kept files' paths (a local surface only, never a remote one)."""

    def __init__(self, toolkit: Toolkit, *, mode: Mode = "compact", local_files: bool = False,
                 origin: Mapping[str, Any] | None = None) -> None:
        self.toolkit = toolkit
        self.mode = mode
        self.local_files = local_files
        self.origin = dict(origin or {})
        self.tools: dict[str, AgentTool] = {t.name: t for t in tool_set(mode)}
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}

    # -- dispatch -------------------------------------------------------------------------------

    async def call(self, account: Account, name: str, arguments: Mapping[str, Any] | None, *,
                   on_event: EventCallback | None = None, on_job: JobCallback | None = None) -> ToolResult:
        """Run tool ``name``. ``on_job`` hears a generation's job as soon as it exists (before the
        provider has it), ``on_event`` every change after. Raises ``UnknownAgentTool``; any other
        exception is a bug or an outage for the caller to log."""
        tool = self.tools.get(name)
        if tool is None:
            raise UnknownAgentTool(name)
        try:
            args = self.check_arguments(tool, dict(arguments or {}))
            if tool.model is not None:
                return await self.run_model(account, tool.model, args, on_event=on_event, on_job=on_job)
            handler = getattr(self, "_" + name)
            return await handler(account, args, on_event=on_event, on_job=on_job)
        except UserError as exc:
            text = str(exc)
            if tool.generates and "charged" not in text:
                text += ("\n" if "\n" in text else " ") + "Nothing was submitted or charged."
            return ToolResult(text, is_error=True)
        except ProviderError as exc:  # e.g. a cancel the provider did not answer: its text is for people
            return ToolResult(f"{exc.message} Try again in a moment.", is_error=True)

    def check_arguments(self, tool: AgentTool, arguments: dict[str, Any]) -> dict[str, Any]:
        """JSON-string values for array/object fields are parsed (some hosts send them so); other
        tools are checked against their schema and get their defaults. A model's own arguments are
        checked by the catalog, which names every problem and the allowed values."""
        problems = shape_problems(arguments)  # the raw arguments, then again once JSON strings are parsed
        if not problems:
            parse_json_strings(tool.input_schema, arguments)
            problems = shape_problems(arguments)
        if problems:
            raise InvalidArguments(tool.name, problems)
        if tool.model is not None:
            return arguments
        validator = self._validators.get(tool.name)
        if validator is None:
            import jsonschema

            validator = self._validators[tool.name] = jsonschema.Draft202012Validator(tool.input_schema)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.path])
        if errors:
            raise InvalidArguments(tool.name, [_problem(e) for e in errors])
        defaults = {k: v["default"] for k, v in tool.input_schema["properties"].items() if "default" in v}
        return defaults | arguments

    # -- generation -----------------------------------------------------------------------------

    def quote(self, name: str, arguments: Mapping[str, Any] | None) -> tuple[ModelSpec, Quote] | None:
        """What a generation call would cost, or None when it is not one or its arguments are invalid
        (the call itself then reports them): for asking the user before spending."""
        tool = self.tools.get(name)
        if tool is None or not tool.generates:
            return None
        args = dict(arguments or {})
        try:
            if tool.model is None:
                parse_json_strings(tool.input_schema, args)
                spec, args = get(str(args.get("model", ""))), dict(args.get("arguments") or {})
            else:
                spec = tool.model
            parse_json_strings(spec.schema(), args)
            args.pop(WAIT_SECONDS, None)
            estimate = self.toolkit.estimate(spec.tool, args)
        except (UserError, AttributeError, TypeError, ValueError):
            return None
        return estimate.spec, estimate.quote

    async def run_model(self, account: Account, spec: ModelSpec, arguments: dict[str, Any], *,
                        on_event: EventCallback | None = None, on_job: JobCallback | None = None) -> ToolResult:
        """Start a job and follow it for up to ``wait_seconds``; cancelled → the job is cancelled too."""
        arguments = dict(arguments)
        parse_json_strings(spec.schema(), arguments)
        wait = _wait_seconds(spec, arguments)
        started = time.monotonic()
        job_id: str | None = None

        async def created(job: Job) -> None:
            nonlocal job_id
            job_id = job.id
            if on_job is not None:
                await on_job(job)

        try:
            job = await self.toolkit.generate(account, spec.tool, arguments, wait=0, on_event=on_event,
                                              on_job=created, allow_local_files=self.local_files,
                                              origin=self.origin)
            warnings = tuple(self.toolkit.warnings.pop(job.id, ()))
            if on_event is not None and job.request_id:  # the submit happened before anyone followed the job
                await _call(on_event, JobEvent(job, f"submitted to {job.provider} as request {job.request_id}",
                                               elapsed=job.elapsed(self.now())))
            remaining = wait - (time.monotonic() - started)
            if not job.finished and remaining > 0:
                job = await self.toolkit.wait_for_job(account, job.id, timeout=remaining, on_event=on_event)
        except anyio.get_cancelled_exc_class():
            if job_id is not None:
                with anyio.CancelScope(shield=True):
                    await self.abandon(account, job_id)
            raise
        return await self.job_result(account, job, warnings=warnings, failure_is_error=True)

    async def abandon(self, account: Account, job_id: str) -> Job | None:
        """Cancel the job of a call its caller gave up on, as ``cancel_job`` would (never raises)."""
        try:
            job, _ = await self.toolkit.cancel_job(account, job_id)
            return job
        except (UserError, ProviderError):
            return None

    async def _generate(self, account: Account, arguments: dict[str, Any], **callbacks: Any) -> ToolResult:
        spec = get(arguments["model"])
        given = arguments["arguments"]
        if not isinstance(given, dict):
            raise InvalidArguments(spec.tool, ["arguments: expected an object of the model's parameters"])
        return await self.run_model(account, spec, {**given, WAIT_SECONDS: arguments[WAIT_SECONDS]}, **callbacks)

    # -- jobs -----------------------------------------------------------------------------------

    async def job_result(self, account: Account, job: Job, *, warnings: tuple[str, ...] = (),
                         message: str | None = None, failure_is_error: bool = False) -> ToolResult:
        """A job as text + data. ``failure_is_error``: a generation (or the wait for one) that failed
        or ended unknown is an error result, so the model does not carry on as if it had worked."""
        limits = await self.toolkit.quota_status(account)
        now, tz = self.now(), self.toolkit.ledger.tz
        data = results.job_structured(job, now=now, show_paths=self.local_files, limits=limits,
                                      warnings=warnings, message=message)
        text = results.job_text(job, now=now, show_paths=self.local_files, limits=limits, tz=tz,
                                warnings=warnings, message=message)
        failed = failure_is_error and job.state in (JobState.FAILED, JobState.UNKNOWN)
        return ToolResult(text, data, is_error=failed, job=job, warnings=warnings)

    async def _get_job(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        return await self.job_result(account, await self.toolkit.get_job(account, arguments["job_id"]))

    async def _wait_for_job(self, account: Account, arguments: dict[str, Any], *,
                            on_event: EventCallback | None = None, **_: Any) -> ToolResult:
        job = await self.toolkit.get_job(account, arguments["job_id"])
        if not job.finished and arguments[WAIT_SECONDS] > 0:
            job = await self.toolkit.wait_for_job(account, job.id, timeout=arguments[WAIT_SECONDS], on_event=on_event)
        return await self.job_result(account, job, failure_is_error=True)

    async def _cancel_job(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        job, message = await self.toolkit.cancel_job(account, arguments["job_id"])
        return await self.job_result(account, job, message=message)

    async def _list_jobs(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        jobs = await self.toolkit.list_jobs(account, limit=arguments["limit"], all_accounts=arguments["all_accounts"])
        if not jobs:
            return ToolResult("No jobs yet.", {"jobs": []})
        tz = self.toolkit.ledger.tz
        lines = [f"{len(jobs)} most recent job(s), newest first:"] + [results.job_line(j, tz=tz) for j in jobs]
        unfinished = [j.id for j in jobs if j.state not in FINAL]
        if unfinished:
            lines.append(f"Unfinished: {', '.join(unfinished)} — wait_for_job follows one.")
        return ToolResult("\n".join(lines), {"jobs": [results.job_summary(j) for j in jobs]})

    # -- catalog and budget ---------------------------------------------------------------------

    def _model_entry(self, spec: ModelSpec) -> dict[str, Any]:
        quote = spec.default_quote(self.toolkit.settings.price_overrides(spec.tool))
        return {"tool": spec.tool, "title": spec.title, "provider": spec.provider.value,
                "category": spec.category.value, "output": spec.output.kind.value,
                "default_cost_usd": to_usd(quote.micros), "price": spec.price_unit,
                "image_inputs": list(spec.media_fields()), "when_to_use": spec.summary}

    async def _list_models(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        from ..recommend import options_for  # the solver loads on the first call that needs it

        category, query = arguments.get("category"), (arguments.get("query") or "").lower().split()
        ceiling = arguments.get("max_cost_usd")
        models, lines = [], []
        for spec in self.toolkit.list_tools():
            entry = self._model_entry(spec)
            haystack = f"{spec.tool} {spec.title} {spec.summary}".lower()
            if (category and spec.category.value != category) or not all(w in haystack for w in query):
                continue
            if ceiling is not None and min(o.cost_micros for o in options_for(
                    spec, overrides=self.toolkit.settings.price_overrides(spec.tool))) > ceiling_micros(ceiling):
                continue
            models.append(entry)
            lines.append(f"- {spec.tool} ({spec.category.value}; default run {format_usd(_micros(entry))}, "
                         f"{spec.price_unit}): {first_sentence(spec.summary)}")
        verb = "describe_model shows one's parameters" if self.mode == "compact" else "call a model's tool"
        head = (f"{len(models)} model(s); list prices as of {PRICES_AS_OF}. estimate_cost prices exact arguments; "
                f"{verb}.")
        if not models:
            head = "No model matches those filters; list_models without filters shows all of them."
        return ToolResult("\n".join([head, *lines]), {"prices_as_of": PRICES_AS_OF, "models": models})

    async def _recommend_models(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        from ..recommend import recommend, wants_from

        found = recommend(wants_from(arguments), overrides=self._overrides())
        return ToolResult(found.text(), found.as_dict())

    def _overrides(self) -> dict[str, dict[str, int]]:
        return {tool: self.toolkit.settings.price_overrides(tool) for tool in CATALOG}

    async def _describe_model(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        spec = get(arguments["model"])
        entry = self._model_entry(spec)
        schema = spec.schema()
        lines = [f"{spec.tool}: {spec.title}", spec.summary.strip(), "How to prompt: " + spec.prompt_guide.strip(),
                 *(n.strip() for n in spec.notes),
                 f"Price: {spec.price_unit}; a default run costs {format_usd(_micros(entry))}.",
                 f"Parameters (JSON Schema; pass them as generate's arguments): {json.dumps(schema)}"]
        return ToolResult("\n\n".join(lines), {**entry, "input_schema": schema, "prompt_guide": spec.prompt_guide,
                                              "notes": list(spec.notes)})

    async def _estimate_cost(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        spec = get(arguments.get("model") or arguments["tool"])
        given = {k: v for k, v in (arguments.get("arguments") or {}).items() if k != WAIT_SECONDS}
        parse_json_strings(spec.schema(), given)
        params, missing = spec.validate_for_pricing(given)
        quote = spec.price(params, self.toolkit.settings.price_overrides(spec.tool))
        limits = await self.toolkit.quota_status(account)
        left = results.money_left(limits)
        fits = left is None or left >= quote.micros
        shown = {k: v for k, v in params.public_params().items() if k not in missing}
        lines = [f"{spec.tool}: {quote.usd} ({quote.formula}).",
                 results.budget_text(limits, self.now(), self.toolkit.ledger.tz)]
        if not fits:
            lines.append(f"That is more than the {format_usd(left or 0)} left: pick a cheaper model or shorter "
                         "duration, or wait for the budget to reset.")
        if missing:
            lines.append(f"To run it you will also need: {', '.join(missing)}.")
        return ToolResult("\n".join(lines), {
            "tool": spec.tool, "cost_usd": to_usd(quote.micros), "formula": quote.formula, "params": shown,
            "missing_required": missing, "fits_budget": fits, "budget": results.budget_items(limits)})

    async def _get_quota(self, account: Account, arguments: dict[str, Any], **_: Any) -> ToolResult:
        limits = await self.toolkit.quota_status(account)
        lines = [f"Limits for account '{account.name}':",
                 *results.quota_lines(limits, self.now(), self.toolkit.ledger.tz)]
        return ToolResult("\n".join(lines), {"account": account.name, "budget": results.budget_items(limits)})

    def now(self) -> float:
        clock = getattr(self.toolkit.ledger, "clock", None)
        return clock() if callable(clock) else time.time()


async def _call(callback: EventCallback, event: JobEvent) -> None:
    outcome = callback(event)
    if inspect.isawaitable(outcome):
        await outcome


def _micros(entry: Mapping[str, Any]) -> int:
    return round(entry["default_cost_usd"] * 1_000_000)


def parse_json_strings(schema: Mapping[str, Any], arguments: dict[str, Any]) -> None:
    """Parse JSON-string values of array/object properties in place (Claude Desktop sends them so)."""
    for key, value in list(arguments.items()):
        prop = schema.get("properties", {}).get(key, {})
        kinds = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", ())}
        if isinstance(value, str) and kinds & {"array", "object"}:
            with contextlib.suppress(ValueError, RecursionError):  # not JSON, or past the parser's limits
                parsed = json.loads(value)
                if isinstance(parsed, (list, dict)):
                    arguments[key] = parsed


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

