"""The agent loop: one user message in, the model's answer and its tool calls out, within bounds.

A turn stores the user's message, then calls the model until it answers without tool calls. Each
model call is first reserved on the ledger (``TokenMeter``), so a conversation can never take a
user past their budget. Tool calls run through the agent tools' ``Executor`` (the compact set)
as the user's own account; malformed arguments, unknown tools and refusals go back to the model
as results it can read. A ``generate`` is priced first and put to the surface (``TurnUI.confirm``)
unless it costs no more than ``[llm] confirm_above_usd``; the surface runs it here, declines it,
or takes it over (Discord's price card). At most ``max_tool_calls`` calls and ``max_generations``
generations per turn; past the first bound the model is asked to answer without tools.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..agent import results
from ..agent import tools as agent_tools
from ..agent.executor import Executor, ToolResult
from ..agent.schemas import WAIT_SECONDS, WAIT_SECONDS_MAX
from ..catalog import ModelSpec, Quote
from ..config import LlmSettings
from ..errors import UserError
from ..jobs import Job, JobEvent
from ..money import format_usd
from ..toolkit import Account, Toolkit
from .llm import Completion, LlmClient, LlmError, ToolCall, parse_arguments
from .meter import TokenMeter
from .store import Conversation, ConversationStore

SYSTEM_PROMPT = """\
You are videogen's assistant. You help the user make a video or an image with hosted models, \
within their own budget, using the tools.
- Find candidates with recommend_models (the user's wishes: category, duration, resolution, aspect \
ratio, audio, most cost; it gives models with exact arguments, cheapest first) or list_models; read the \
chosen one's parameters and prompting guide with describe_model; price the exact arguments with estimate_cost.
- Prefer the cheapest model that does what was asked unless the user asks for quality; say why you chose it.
- When the arguments are ready, call generate. The user is shown the price and asked before anything \
is spent, so do not ask for permission in text first. If they decline, do not run it again unless they ask.
- Write the model's prompt by its prompting guide. Keep answers short; give prices in USD."""


@dataclass(frozen=True)
class PendingRun:
    """A generation the model asked for, priced and checked, not yet run."""

    spec: ModelSpec
    arguments: dict[str, Any]
    quote: Quote
    must_ask: bool  # False: within [llm] confirm_above_usd, the surface may run it without asking


@dataclass(frozen=True)
class Answer:
    """The surface's answer to a ``PendingRun``: run it here, or not (``note`` tells the model why,
    e.g. that a price card now waits for the user)."""

    run: bool
    note: str | None = None


class TurnUI:
    """What a surface shows during a turn. Every method may be left as it is."""

    async def text(self, delta: str) -> None:
        """A piece of the model's answer, as it streams."""

    async def tool_started(self, name: str, arguments: Mapping[str, Any]) -> None:
        """A tool call is about to run."""

    async def tool_finished(self, name: str, arguments: Mapping[str, Any], result: ToolResult,
                            price_micros: int | None) -> None:
        """A tool call's result; ``price_micros`` for an estimate or a generation."""

    async def confirm(self, pending: PendingRun) -> Answer:
        """Whether to run a generation. The default never spends."""
        return Answer(False)

    async def progress(self, event: JobEvent) -> None:
        """A running generation's progress."""

    async def finished(self, job: Job) -> None:
        """A generation of this turn ended (deliver its outputs)."""


@dataclass
class ToolCallRecord:
    name: str
    arguments: Any
    result: str
    is_error: bool
    price_micros: int | None = None
    job_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "result": self.result, "error": self.is_error,
                "price_usd": None if self.price_micros is None else self.price_micros / 1_000_000,
                "job_id": self.job_id}


@dataclass
class TurnReport:
    """What one turn did: its messages, tool calls, jobs, and the model's tokens and their cost."""

    conversation: Conversation
    text: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    llm_cost_micros: int = 0
    generations: int = 0


class ChatAgent:
    """The loop for one surface. ``follow_jobs``: a generation is followed to its end inside the turn
    (the terminal); else the turn goes on once it is submitted and the surface follows it."""

    def __init__(self, toolkit: Toolkit, llm: LlmClient, settings: LlmSettings, *, local_files: bool = False,
                 follow_jobs: bool = True, origin: Mapping[str, Any] | None = None,
                 store: ConversationStore | None = None) -> None:
        self.toolkit = toolkit
        self.llm = llm
        self.settings = settings
        self.local_files = local_files
        self.follow_jobs = follow_jobs
        self.executor = Executor(toolkit, mode="compact", local_files=local_files, origin=origin)
        self.tools = agent_tools.export("openai", "compact")
        self.store = store or ConversationStore(toolkit.db)
        self.meter = TokenMeter(toolkit, settings)

    async def turn(self, conversation: Conversation, account: Account, text: str, ui: TurnUI) -> TurnReport:
        """Answer one user message. Raises ``UserError`` (e.g. ``QuotaExceeded``, ``LlmError``) when the
        turn cannot go on; what was stored and spent until then stays stored and booked."""
        report = TurnReport(conversation)
        await self._store(report, {"role": "user", "content": text})
        calls_left = self.settings.max_tool_calls
        while True:
            offer_tools = calls_left > 0
            completion = await self._call_model(report, account, ui, offer_tools)
            if not offer_tools:
                completion.tool_calls = []  # asked to answer without tools: extra calls are dropped
            await self._store(report, completion.as_message(), model=self.llm.model)
            report.text = completion.text
            if not completion.tool_calls:
                return report
            for call in completion.tool_calls:
                if calls_left <= 0:
                    result = ToolResult(f"Not run: the limit of {self.settings.max_tool_calls} tool calls per message "
                                        "is reached. Answer the user now with what you have.", is_error=True)
                    await self._record(report, call, call.arguments, result, None)
                    continue
                calls_left -= 1
                await self._run_call(report, account, call, ui)

    async def _call_model(self, report: TurnReport, account: Account, ui: TurnUI, offer_tools: bool) -> Completion:
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    *await self.store.history(report.conversation, self.settings.history_messages)]
        tools = self.tools if offer_tools else None
        hold = await self.meter.reserve(account, messages, tools)
        try:
            completion = await self.llm.complete(messages, tools, on_text=ui.text)
        except LlmError as exc:
            report.llm_cost_micros += await self.meter.settle(hold, None, partial=exc.partial)
            raise
        except BaseException:
            report.llm_cost_micros += await self.meter.settle(hold, None, partial=True)
            raise
        report.llm_cost_micros += await self.meter.settle(hold, completion.usage)
        if completion.usage is not None:
            report.input_tokens += completion.usage.input_tokens
            report.output_tokens += completion.usage.output_tokens
        return completion

    async def _store(self, report: TurnReport, message: dict[str, Any], **extra: Any) -> None:
        await self.store.append(report.conversation, message, **extra)
        report.messages.append(message)

    async def _record(self, report: TurnReport, call: ToolCall, arguments: Any, result: ToolResult,
                      price: int | None) -> None:
        content = ("Error: " + result.text) if result.is_error else result.text
        await self._store(report, {"role": "tool", "tool_call_id": call.id, "content": content})
        report.tool_calls.append(ToolCallRecord(call.name, arguments, result.text, result.is_error, price,
                                                result.job.id if result.job else None))

    async def _run_call(self, report: TurnReport, account: Account, call: ToolCall, ui: TurnUI) -> None:
        try:
            arguments = parse_arguments(call.arguments)
        except ValueError as exc:
            await self._record(report, call, call.arguments, ToolResult(f"{call.name}: {exc}.", is_error=True), None)
            return
        if call.name not in self.executor.tools:
            names = ", ".join(self.executor.tools)
            await self._record(report, call, arguments,
                               ToolResult(f"There is no tool '{call.name}'; the tools are {names}.", is_error=True),
                               None)
            return
        await ui.tool_started(call.name, arguments)
        price: int | None = None
        if self.executor.tools[call.name].generates:
            result, price = await self._generate(report, account, arguments, ui)
        else:
            result = await self.executor.call(account, call.name, arguments)
            if call.name == "estimate_cost" and result.data and not result.is_error:
                price = round(result.data["cost_usd"] * 1_000_000)
        await ui.tool_finished(call.name, arguments, result, price)
        await self._record(report, call, arguments, result, price)

    async def _generate(self, report: TurnReport, account: Account, arguments: dict[str, Any],
                        ui: TurnUI) -> tuple[ToolResult, int | None]:
        if report.generations >= self.settings.max_generations:
            return ToolResult(f"Not run: at most {self.settings.max_generations} generation(s) per message. Tell the "
                              "user what you would run next, and they can ask for it.", is_error=True), None
        tool = self.executor.tools["generate"]
        try:
            checked = self.executor.check_arguments(tool, dict(arguments))
            given = checked["arguments"]
            if not isinstance(given, dict):
                raise UserError("generate: 'arguments' must be an object of the model's parameters.")
            estimate = await self.toolkit.preflight(account, checked["model"], given,
                                                    allow_local_files=self.local_files)
        except UserError as exc:
            return ToolResult(f"{exc} Nothing was submitted or charged.", is_error=True), None
        threshold = self.settings.confirm_above_micros
        must_ask = threshold is None or estimate.quote.micros > threshold
        price = estimate.quote.micros
        try:
            answer = await ui.confirm(PendingRun(estimate.spec, dict(given), estimate.quote, must_ask))
        except UserError as exc:  # the surface's own checks (a server's rules, the budget) refused it
            return ToolResult(f"{exc} Nothing was submitted or charged.", is_error=True), price
        if not answer.run:
            note = answer.note or (f"The user declined this {format_usd(price)} run of {estimate.spec.tool}; nothing "
                                   "was submitted or charged. Ask what they would like to change; do not run it "
                                   "again unless they ask.")
            return ToolResult(note, {"declined": answer.note is None}), price
        report.generations += 1
        wait = WAIT_SECONDS_MAX if self.follow_jobs else 0
        result = await self.executor.call(account, "generate", {**checked, WAIT_SECONDS: wait},
                                          on_event=ui.progress)
        job = result.job
        if job is not None and self.follow_jobs and not job.finished:
            job = await self.toolkit.wait_for_job(account, job.id, on_event=ui.progress)
            result = await self.executor.job_result(account, job, failure_is_error=True)
        if job is not None:
            report.jobs.append(job)
            await ui.finished(job)
        return result, price


def turn_json(report: TurnReport) -> dict[str, Any]:
    """The ``--json`` form of a turn: its messages, tool calls, jobs and the model's cost."""
    return {"conversation": report.conversation.key, "text": report.text, "messages": report.messages,
            "tool_calls": [c.as_json() for c in report.tool_calls],
            "jobs": [results.job_summary(j) | {"outputs": results.output_items(j, show_paths=True),
                                               "error": j.error} for j in report.jobs],
            "llm": {"input_tokens": report.input_tokens, "output_tokens": report.output_tokens,
                    "cost_usd": report.llm_cost_micros / 1_000_000}}


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
