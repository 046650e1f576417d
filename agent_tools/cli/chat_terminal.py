"""The terminal side of ``videogen chat``: streamed text on stdout; tool calls with their prices,
job progress and the y/N question on stderr; the answers read from stdin. Imported only when
``videogen chat`` runs (it loads the agent, the Toolkit and the job engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, TextIO

from ..agent.executor import ToolResult
from ..chat.agent import Answer, PendingRun, TurnUI
from ..jobs import Job, JobEvent
from ..money import format_usd
from .output import Progress, describe_job


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
