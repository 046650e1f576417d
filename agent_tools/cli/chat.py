"""``videogen chat``: the chat agent in the terminal, as the local account.

One-shot (``videogen chat "a cheap 6 s clip of a fox in the snow"``) or interactive (no message:
one turn per line until end of input or ``/exit``). The answer streams to stdout; each tool call
and its price, progress and the confirmation question go to stderr (``chat_terminal``). A
generation is run only after ``y`` (or without asking with ``--yes``, or when it costs no more than
``[llm] confirm_above_usd``). ``--json`` prints each turn's messages, tool calls and jobs as JSON
instead of streaming text. A conversation is stored: ``--session NAME`` continues it later. The
agent, the Toolkit and the SDK are imported when the command runs, not at ``videogen --help``.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import TYPE_CHECKING, Any, TextIO

from ..config import Settings
from ..errors import UserError
from ..money import format_usd
from .output import settings_of

if TYPE_CHECKING:
    from ..chat.agent import TurnReport


def cmd_chat(args: argparse.Namespace) -> int:
    import asyncio

    from ..chat.llm import check_settings

    settings = settings_of(args)
    check_settings(settings.llm)  # before anything starts: say exactly what to set
    return asyncio.run(run_chat(settings, args.message, session=args.session, yes=args.yes, as_json=args.json,
                                simulate=args.simulate))


async def run_chat(settings: Settings, message: str | None, *, session: str | None, yes: bool, as_json: bool,
                   simulate: bool, out: TextIO | None = None, err: TextIO | None = None,
                   inp: TextIO | None = None) -> int:
    """Run one message (or, with ``message`` None, a session read from ``inp``); 1 if a job failed."""
    import asyncio

    from ..chat.agent import ChatAgent, dumps, turn_json
    from ..chat.llm import LlmClient
    from ..jobs import JobState
    from ..simulator.session import simulated
    from ..toolkit import Toolkit
    from .chat_terminal import TerminalUI

    out, err, inp = out or sys.stdout, err or sys.stderr, inp or sys.stdin
    llm = LlmClient.from_settings(settings.llm)
    try:
        async with simulated(settings, simulate) as effective:
            toolkit = await Toolkit.open(effective)
            try:
                me = toolkit.local_account()
                agent = ChatAgent(toolkit, llm, effective.llm, local_files=True, follow_jobs=True,
                                  origin={"surface": "chat", "simulated": simulate})
                key = f"terminal:{session or uuid.uuid4().hex[:12]}"
                conversation = await agent.store.open(key, account=me.name, surface="terminal")
                if conversation.account != me.name:
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
                        report = await agent.turn(conversation, me, text, ui)
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
