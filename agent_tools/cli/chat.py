"""``videogen chat``: the chat agent in the terminal, as the local account.

One-shot (``videogen chat "a cheap 6 s clip of a fox in the snow"``) or interactive (no message:
one turn per line until end of input or ``/exit``). The answer streams to stdout; each tool call
and its price, progress and the confirmation question go to stderr. A generation is run only
after ``y`` (or without asking with ``--yes``, or when it costs no more than
``[llm] confirm_above_usd``). ``--json`` prints each turn's messages, tool calls and jobs as JSON
instead of streaming text. A conversation is stored: ``--session NAME`` continues it later.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Mapping
from typing import Any, TextIO

from ..agent.executor import ToolResult
from ..chat.agent import Answer, ChatAgent, PendingRun, TurnReport, TurnUI, dumps, turn_json
from ..chat.llm import LlmClient, check_settings
from ..config import Settings
from ..errors import UserError
from ..jobs import Job, JobEvent, JobState
from ..money import format_usd
from ..simulator.session import simulated
from ..toolkit import Toolkit
from .output import LOCAL, Progress, describe_job, settings_of


class TerminalUI(TurnUI):
    """Streams text to ``out``; tool calls, progress and questions to ``err``; answers from ``inp``."""

    def __init__(self, *, out: TextIO, err: TextIO, inp: TextIO, yes: bool, stream_text: bool) -> None:
        self.out, self.err, self.inp = out, err, inp
        self.yes = yes
        self.stream_text = stream_text
        self._progress = Progress(err, prefix="  ")
        self._open_line = False

    def _say(self, text: str) -> None:
        if self._open_line:
            self.out.write("\n")
            self.out.flush()
            self._open_line = False
        self.err.write(text + "\n")
        self.err.flush()

    async def text(self, delta: str) -> None:
        if self.stream_text:
            self.out.write(delta)
            self.out.flush()
            self._open_line = not delta.endswith("\n")

    async def tool_started(self, name: str, arguments: Mapping[str, Any]) -> None:
        self._say(f"→ {name}({_brief(arguments)})")

    async def tool_finished(self, name: str, arguments: Mapping[str, Any], result: ToolResult,
                            price_micros: int | None) -> None:
        first = result.text.strip().splitlines()[0] if result.text.strip() else ""
        price = f" {format_usd(price_micros)}" if price_micros is not None else ""
        mark = "✗" if result.is_error else "✓"
        self._say(f"  {mark} {name}{price}: {first[:160]}")

    async def confirm(self, pending: PendingRun) -> Answer:
        label = f"{pending.spec.tool} for {pending.quote.usd} ({pending.quote.formula})"
        if self.yes or not pending.must_ask:
            self._say(f"  running {label}" + (" (--yes)" if self.yes and pending.must_ask else ""))
            return Answer(True)
        self._say(f"  prompt: {pending.arguments.get('prompt', '')!s:.200}")
        self.err.write(f"Run {label}? [y/N] ")
        self.err.flush()
        line = await asyncio.to_thread(self.inp.readline)
        ok = line.strip().lower() in ("y", "yes")
        if not line.endswith("\n"):
            self.err.write("\n")
        self._say("  running it" if ok else "  not run; nothing was charged")
        return Answer(ok)

    async def progress(self, event: JobEvent) -> None:
        self._progress(event)

    async def finished(self, job: Job) -> None:
        self._progress.done()
        self._say(describe_job(job))

    def end_turn(self) -> None:
        if self._open_line:
            self.out.write("\n")
            self.out.flush()
            self._open_line = False


def _brief(arguments: Mapping[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" if not isinstance(v, dict) else f"{k}={{{_brief(v)}}}" for k, v in arguments.items())
    return text if len(text) <= 160 else text[:157] + "..."


def cmd_chat(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    check_settings(settings.llm)  # before anything starts: say exactly what to set
    return asyncio.run(run_chat(settings, args.message, session=args.session, yes=args.yes, as_json=args.json,
                                simulate=args.simulate))


async def run_chat(settings: Settings, message: str | None, *, session: str | None, yes: bool, as_json: bool,
                   simulate: bool, out: TextIO | None = None, err: TextIO | None = None,
                   inp: TextIO | None = None) -> int:
    """Run one message (or, with ``message`` None, a session read from ``inp``); 1 if a job failed."""
    out, err, inp = out or sys.stdout, err or sys.stderr, inp or sys.stdin
    llm = LlmClient.from_settings(settings.llm)
    try:
        async with simulated(settings, simulate) as effective:
            toolkit = await Toolkit.open(effective)
            try:
                agent = ChatAgent(toolkit, llm, effective.llm, local_files=True, follow_jobs=True,
                                  origin={"surface": "chat", "simulated": simulate})
                key = f"terminal:{session or uuid.uuid4().hex[:12]}"
                conversation = await agent.store.open(key, account=LOCAL.name, surface="terminal")
                if conversation.account != LOCAL.name:
                    err.write(f"error: session {session!r} belongs to another account.\n")
                    return 2
                ui = TerminalUI(out=out, err=err, inp=inp, yes=yes, stream_text=not as_json)
                if session is None:
                    err.write(f"(conversation {key.removeprefix('terminal:')}; continue it later with "
                              f"--session {key.removeprefix('terminal:')})\n")
                messages = [message] if message is not None else None
                failed = False
                while True:
                    if messages is not None:
                        if not messages:
                            break
                        text = messages.pop(0)
                    else:
                        err.write("you> ")
                        err.flush()
                        line = await asyncio.to_thread(inp.readline)
                        if not line or line.strip() in ("/exit", "/quit"):
                            break
                        text = line.strip()
                        if not text:
                            continue
                    try:
                        report = await agent.turn(conversation, LOCAL, text, ui)
                    except UserError as exc:
                        if messages is not None:
                            raise  # one-shot: the command fails with the message
                        ui.end_turn()
                        err.write(f"error: {exc}\n")  # a session goes on: the next line may work
                        continue
                    ui.end_turn()
                    failed = failed or any(j.state is not JobState.SUCCEEDED for j in report.jobs)
                    _summary(report, err)
                    if as_json:
                        out.write(dumps(turn_json(report)) + "\n")
                        out.flush()
                return 1 if failed else 0
            finally:
                await toolkit.close()
    finally:
        await llm.aclose()


def _summary(report: TurnReport, err: TextIO) -> None:
    tokens = report.input_tokens + report.output_tokens
    err.write(f"(model: {tokens} tokens, {format_usd(report.llm_cost_micros)})\n")
    err.flush()


def register(commands: Any) -> None:
    chat = commands.add_parser(
        "chat", help="describe what you want; an AI agent picks the model, prices it, asks, generates",
        description="Talk to the videogen agent: it finds a model, prices the run, asks y/N before spending, "
                    "generates and shows where the result is. Needs the chat extra (pip install 'videogen[chat]') "
                    "and [llm] settings (model, api_key or base_url). Without MESSAGE it is interactive.")
    chat.add_argument("message", nargs="?", metavar="MESSAGE", help="one message (one-shot); omit for a session")
    chat.add_argument("--session", metavar="NAME", help="continue (or start) the stored conversation NAME")
    chat.add_argument("--yes", action="store_true", help="run generations without asking (for scripts)")
    chat.add_argument("--json", action="store_true", help="print each turn's messages, tool calls and jobs as JSON")
    chat.add_argument("--simulate", action="store_true",
                      help="providers are the built-in simulator: free, offline, test clips")
    chat.set_defaults(func=cmd_chat)
