"""``videogen generate``, ``videogen jobs …`` and ``videogen simulator``: the commands that run things.

They go through the Toolkit as the local account, exactly as the MCP server and the Discord bot do,
so what works here works there. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TextIO

from pydantic import SecretStr

from .config import Settings, load_settings
from .errors import InvalidArguments, UserError
from .jobs import Job, JobEvent, JobState
from .money import format_usd, to_usd
from .toolkit import LOCAL_ACCOUNT, Account, Toolkit

LOCAL = Account(LOCAL_ACCOUNT, is_admin=True)  # the operator at the terminal
SIMULATED_KEY = "simulated-key"


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Left-aligned columns with a rule under the headers: what every listing command prints."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


class Progress:
    """One status line on stderr: rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, *, prefix: str = "") -> None:
        self.stream = stream
        self.prefix = prefix
        self.tty = stream.isatty()
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


@contextlib.asynccontextmanager
async def simulated(settings: Settings, enabled: bool) -> AsyncIterator[Settings]:
    """With ``--simulate``: start the simulator in this process and point both providers at it."""
    if not enabled:
        yield settings
        return
    from .simulator import SimSettings, Simulator

    sim = Simulator(SimSettings())
    await sim.start(host="127.0.0.1", port=0)
    try:
        fal = settings.fal.model_copy(update={"key": SecretStr(SIMULATED_KEY), "queue_url": sim.fal_queue_url,
                                              "rest_url": sim.fal_rest_url})
        wavespeed = settings.wavespeed.model_copy(update={"key": SecretStr(SIMULATED_KEY),
                                                          "base_url": sim.wavespeed_base_url})
        print(f"SIMULATED: providers are the local simulator at {sim.base_url}; outputs are test clips, "
              "not real generations, and nothing is billed.", file=sys.stderr)
        yield settings.model_copy(update={"fal": fal, "wavespeed": wavespeed})
    finally:
        await sim.stop()


def job_json(job: Job, *, simulated: bool = False) -> dict[str, Any]:
    cost = job.actual_micros if job.actual_micros is not None else job.estimate_micros
    data = {"job_id": job.id, "state": job.state.value, "tool": job.tool, "cost_usd": to_usd(cost),
            "outputs": [{"url": o.get("url"), "path": o.get("path"), "content_type": o.get("content_type")}
                        for o in job.outputs],
            "error": job.error if job.state is not JobState.SUCCEEDED or job.error else None}
    if simulated or job.origin.get("simulated"):
        data["simulated"] = True
    return data


def _describe(job: Job) -> str:
    cost = job.actual_micros if job.actual_micros is not None else job.estimate_micros
    lines = [f"job {job.id}: {job.state.value} — {job.tool} ({job.provider} {job.endpoint_id})",
             f"  cost: {format_usd(cost)}" + ("" if job.actual_micros is not None else " reserved (estimate)")]
    if job.request_id:
        lines.append(f"  provider request: {job.request_id}")
    for output in job.outputs:
        lines.append(f"  output: {output.get('path') or '(not downloaded)'}")
        lines.append(f"          {output.get('url')}")
    if job.error:
        lines.append(f"  {'note' if job.state is JobState.SUCCEEDED else 'error'}: {job.error}")
    if job.origin.get("simulated"):
        lines.append("  SIMULATED: made by the local simulator, not a real model.")
    return "\n".join(lines)


# -- generate -------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    from .catalog import get
    from .cli import _parse_tool_arguments, _tool_parser

    spec = get(args.tool)
    parser = _tool_parser("generate", spec)
    parser.add_argument("--simulate", action="store_true",
                        help="run against the built-in provider simulator: free, offline, test clips")
    options, arguments, problems = _parse_tool_arguments(parser, spec, args.params)
    if problems:
        try:
            spec.validate(arguments)
        except InvalidArguments as exc:
            problems += exc.problems
        raise InvalidArguments(spec.tool, problems)
    settings = load_settings(args.config)
    return asyncio.run(_generate(settings, spec.tool, arguments, simulate=options.simulate, as_json=options.json))


async def _generate(settings: Settings, tool: str, arguments: dict[str, Any], *, simulate: bool, as_json: bool) -> int:
    async with simulated(settings, simulate) as effective:
        toolkit = await Toolkit.open(effective)
        progress = Progress()
        try:
            job = await toolkit.generate(LOCAL, tool, arguments, on_event=progress,
                                         origin={"surface": "cli", "simulated": simulate})
        finally:
            progress.done()
            await toolkit.close()
    if as_json:
        print(json.dumps(job_json(job, simulated=simulate), indent=2))
    else:
        print(_describe(job))
    return 0 if job.state is JobState.SUCCEEDED else 1


# -- jobs -----------------------------------------------------------------------------------

def with_toolkit(args: argparse.Namespace, action: Callable[[Toolkit], Awaitable[Any]]) -> Any:
    """Run one Toolkit call for a command: open (without resuming jobs), act, close."""
    async def go() -> Any:
        toolkit = await Toolkit.open(load_settings(args.config), resume=False)
        try:
            return await action(toolkit)
        finally:
            await toolkit.close()

    return asyncio.run(go())


def cmd_jobs_list(args: argparse.Namespace) -> int:
    jobs = with_toolkit(args, lambda t: t.list_jobs(LOCAL, limit=args.limit, all_accounts=args.all))
    if args.json:
        print(json.dumps([job_json(j) | {"account": j.account, "created_at": j.created_at} for j in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs yet; `videogen generate TOOL --simulate ...` makes a free test one")
        return 0
    rows = [[j.id, j.account, j.tool, j.state.value,
             format_usd(j.actual_micros if j.actual_micros is not None else j.estimate_micros),
             time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created_at)),
             (j.outputs[0].get("path") or j.outputs[0].get("url") or "") if j.outputs else (j.error or "")[:60]]
            for j in jobs]
    print(table(rows, ["JOB", "ACCOUNT", "TOOL", "STATE", "COST", "CREATED", "OUTPUT / ERROR"]))
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    job = with_toolkit(args, lambda t: t.get_job(LOCAL, args.job_id))
    if args.json:
        print(json.dumps(job_json(job) | {"account": job.account, "params": job.params, "request_id": job.request_id,
                                          "logs": job.logs, "created_at": job.created_at,
                                          "finished_at": job.finished_at}, indent=2))
    else:
        print(_describe(job))
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    job, message = with_toolkit(args, lambda t: t.cancel_job(LOCAL, args.job_id))
    print(f"job {job.id}: {message}")
    return 0


# -- simulator ------------------------------------------------------------------------------

def cmd_simulator(args: argparse.Namespace) -> int:
    from .simulator import SimSettings, serve

    try:
        asyncio.run(serve(args.host, args.port, SimSettings()))
    except KeyboardInterrupt:
        pass
    return 0


def register(commands: Any) -> None:
    """Add generate, jobs and simulator to the top-level parser."""
    generate = commands.add_parser(
        "generate", help="run one generation end to end",
        description="Run one generation with live progress on stderr. `videogen generate TOOL --help` lists "
                    "the model's parameters; add --simulate to try it free against the built-in simulator.")
    generate.add_argument("tool", metavar="TOOL", help="a tool name from `videogen models`")
    generate.add_argument("params", nargs=argparse.REMAINDER,
                          help="the model's parameters, then --json and/or --simulate")
    generate.set_defaults(func=cmd_generate)

    jobs = commands.add_parser("jobs", help="list, show or cancel jobs", description="Work with job records.")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", metavar="SUBCOMMAND", required=True)
    listing = jobs_commands.add_parser("list", help="recent jobs", description="List recent jobs, newest first.")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.add_argument("--all", action="store_true", help="every account's jobs, not only the local account's")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_jobs_list)
    show = jobs_commands.add_parser("show", help="one job in full", description="Show one job.")
    show.add_argument("job_id", metavar="JOB")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_jobs_show)
    cancel = jobs_commands.add_parser("cancel", help="cancel a job", description="Cancel a job at its provider.")
    cancel.add_argument("job_id", metavar="JOB")
    cancel.set_defaults(func=cmd_jobs_cancel)

    sim = commands.add_parser("simulator", help="run the fal + WaveSpeed simulator",
                              description="Serve both provider protocols locally, with scripted outcomes, for "
                                          "tests, demos and trying a setup for free.")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)")
    sim.set_defaults(func=cmd_simulator)
