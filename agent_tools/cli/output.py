"""What every ``videogen`` command shares: the local account, tables, job rendering, one Toolkit call.

A command module parses its arguments, calls the Toolkit through ``with_toolkit`` (or opens one for a
long run) and renders with these helpers, so every listing looks alike and every job reads the same.
The Toolkit and the job engine are imported when a command first needs them, not here: every
command module imports this one, and ``videogen models`` or ``--help`` should not pay for SQLite,
httpx and the providers.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from ..config import Settings, load_settings
from ..money import format_usd, to_usd

if TYPE_CHECKING:
    from ..jobs import Job, JobEvent
    from ..toolkit import Toolkit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EXIT_USAGE = 2  # a UserError: bad arguments, a refusal, a configuration problem
EXIT_DIFFERENCES = 1  # a check that ran and found differences (books check, db copy, reconcile): a script stops there


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings a command runs with: ``--config`` if given, else the usual search."""
    return load_settings(args.config)


def print_differences(heading: str, differences: Iterable[str]) -> int:
    """How a checking command reports what differs: the heading, then one indented line per
    difference, on stderr (so ``--json`` or a table on stdout stays clean). Returns the exit code."""
    print(heading, file=sys.stderr)
    for line in differences:
        print(f"  {line}", file=sys.stderr)
    return EXIT_DIFFERENCES


def exposure_warning(host: str) -> str | None:
    """The advice every HTTP server command prints when it binds beyond loopback (None on loopback)."""
    if host in LOOPBACK:
        return None
    return (f"warning: listening on {host}, reachable from other machines. Every request needs an account "
            "token, but traffic is plain HTTP: put a TLS reverse proxy in front of it.")


def stop_on_sigterm(*, graceful: bool = False) -> None:
    """SIGTERM (how hosts stop a server) ends the serve loop cleanly so the database is closed.

    By default the serve task is cancelled. ``graceful``: the server (uvicorn for ``mcp --http``)
    shuts down on SIGTERM by itself and re-raises the signal afterwards, so the loop only has to
    survive it — a cancel there would cut the server's lifespan mid-way and log an ERROR traceback.
    """
    if sys.platform == "win32":
        return
    import asyncio
    import signal

    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, (lambda: None) if graceful else task.cancel)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Left-aligned columns with a rule under the headers: what every listing command prints."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


class Progress:
    """One status line on stderr: rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: TextIO | None = None, *, prefix: str = "") -> None:
        self.stream = stream or sys.stderr  # looked up now: a default bound at import goes stale when stderr is replaced
        self.prefix = prefix
        self.tty = self.stream.isatty()
        self._last = ""

    def __call__(self, event: JobEvent) -> None:
        for line in event.new_logs:
            self._write(f"  log: {line}", final=True)
        text = f"{self.prefix}[{event.elapsed:6.1f}s] {event.job.id} {event.message}"
        if text != self._last:
            self._write(text, final=not self.tty)
            self._last = text

    def _write(self, text: str, *, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


OWNER_GONE = "owner gone"


def state_text(job: Job) -> str:
    """``running``, or ``running (owner gone)`` when no live process tracks it: nothing moves it
    until a process resumes it (``videogen jobs resume``)."""
    return f"{job.state.value} ({OWNER_GONE})" if job.owner_gone(time.time()) else job.state.value


def job_json(job: Job, *, simulated: bool = False) -> dict[str, Any]:
    from ..jobs import JobState

    cost = job.actual_micros if job.actual_micros is not None else job.estimate_micros
    data = {"job_id": job.id, "state": job.state.value, "tool": job.tool, "cost_usd": to_usd(cost),
            "owner_gone": job.owner_gone(time.time()),
            "outputs": [{"url": o.get("url"), "path": o.get("path"), "content_type": o.get("content_type")}
                        for o in job.outputs],
            "error": job.error if job.state is not JobState.SUCCEEDED or job.error else None}
    if job.failover_note:
        data["failover"] = job.failover_note
    if simulated or job.origin.get("simulated"):
        data["simulated"] = True
    return data


def describe_job(job: Job) -> str:
    from ..jobs import JobState

    cost = job.actual_micros if job.actual_micros is not None else job.estimate_micros
    lines = [f"job {job.id}: {state_text(job)} — {job.tool} ({job.provider} {job.endpoint_id})",
             f"  cost: {format_usd(cost)}" + ("" if job.actual_micros is not None else " reserved (estimate)")]
    if job.request_id:
        lines.append(f"  provider request: {job.request_id}")
    if job.failover_note:
        lines.append(f"  failover: {job.failover_note}")
    for output in job.outputs:
        lines.append(f"  output: {output.get('path') or '(not downloaded)'}")
        lines.append(f"          {output.get('url')}")
    if job.error:
        lines.append(f"  {'note' if job.state is JobState.SUCCEEDED else 'error'}: {job.error}")
    delivery = job.origin.get("delivery")
    if isinstance(delivery, dict):
        lines.append(f"  delivery: {delivery.get('status')} — {delivery.get('detail')}")
    if job.origin.get("simulated"):
        lines.append("  SIMULATED: made by the local simulator, not a real model.")
    return "\n".join(lines)


def with_toolkit(args: argparse.Namespace, action: Callable[[Toolkit], Awaitable[Any]]) -> Any:
    """Run one Toolkit call for a command: open (without resuming jobs), act, close."""
    import asyncio

    from ..toolkit import Toolkit

    async def go() -> Any:
        toolkit = await Toolkit.open(settings_of(args), resume=False)
        try:
            return await action(toolkit)
        finally:
            await toolkit.close()

    return asyncio.run(go())
