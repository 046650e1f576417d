"""``videogen generate`` and ``videogen jobs …``: run a generation, and work with job records.

They go through the Toolkit as the local account, exactly as the MCP server and the Discord bot do,
so what works here works there. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..catalog import get
from ..config import Settings
from ..errors import InvalidArguments
from ..money import format_usd
from .output import OWNER_GONE, Progress, describe_job, job_json, settings_of, state_text, table, with_toolkit
from .params import parse_tool_arguments, tool_parser


# -- generate -------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    spec = get(args.tool)
    parser = tool_parser("generate", spec)
    parser.add_argument("--simulate", action="store_true",
                        help="run against the built-in provider simulator: free, offline, test clips")
    options, arguments, problems = parse_tool_arguments(parser, spec, args.params)
    if problems:
        try:
            spec.validate(arguments)
        except InvalidArguments as exc:
            problems += exc.problems
        raise InvalidArguments(spec.tool, problems)
    settings = settings_of(args)
    import asyncio

    return asyncio.run(_generate(settings, spec.tool, arguments, simulate=options.simulate, as_json=options.json))


async def _generate(settings: Settings, tool: str, arguments: dict[str, Any], *, simulate: bool, as_json: bool) -> int:
    from ..jobs import JobState
    from ..simulator.session import simulated
    from ..toolkit import Toolkit

    async with simulated(settings, simulate) as effective:
        toolkit = await Toolkit.open(effective)
        progress = Progress()
        try:
            job = await toolkit.generate(toolkit.local_account(), tool, arguments, on_event=progress,
                                         origin={"surface": "cli", "simulated": simulate})
        finally:
            progress.done()
            await toolkit.close()
    if as_json:
        print(json.dumps(job_json(job, simulated=simulate), indent=2))
    else:
        print(describe_job(job))
    return 0 if job.state is JobState.SUCCEEDED else 1


# -- jobs -----------------------------------------------------------------------------------

def cmd_jobs_list(args: argparse.Namespace) -> int:
    jobs = with_toolkit(args, lambda t: t.list_jobs(t.local_account(), limit=args.limit, all_accounts=args.all))
    if args.json:
        print(json.dumps([job_json(j) | {"account": j.account, "created_at": j.created_at} for j in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs yet; `videogen generate TOOL --simulate ...` makes a free test one")
        return 0
    rows = [[j.id, j.account, j.tool, state_text(j),
             format_usd(j.actual_micros if j.actual_micros is not None else j.estimate_micros),
             time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created_at)),
             (j.outputs[0].get("path") or j.outputs[0].get("url") or "") if j.outputs else (j.error or "")[:60]]
            for j in jobs]
    print(table(rows, ["JOB", "ACCOUNT", "TOOL", "STATE", "COST", "CREATED", "OUTPUT / ERROR"]))
    if any(OWNER_GONE in row[3] for row in rows):
        print(f"\n({OWNER_GONE}: the process tracking it stopped; `videogen jobs resume` takes it over now)")
    return 0


def cmd_jobs_resume(args: argparse.Namespace) -> int:
    """Take over every job whose owner is gone, now, and follow them (to the end with --wait)."""
    async def resume(toolkit: Any) -> list[Any]:
        taken = await toolkit.resume()
        timeout = None if args.wait else args.follow_seconds
        return [(job, await toolkit.wait_for_job(toolkit.local_account(), job.id, timeout=timeout)) for job in taken]

    results = with_toolkit(args, resume)
    if args.json:
        print(json.dumps([job_json(after) | {"was": before.state.value} for before, after in results], indent=2))
        return 0
    if not results:
        print("no job to resume: every unfinished job has a live owner (or there is none)")
        return 0
    rows = [[after.id, after.account, after.tool, before.state.value, after.state.value,
             (after.outputs[0].get("path") or "") if after.outputs else (after.error or "")[:60]]
            for before, after in results]
    print(table(rows, ["JOB", "ACCOUNT", "TOOL", "WAS", "NOW", "OUTPUT / ERROR"]))
    if any(not after.finished for _, after in results):
        print("\nstill running at the provider; they are handed back as this command exits — "
              "`videogen jobs resume --wait` follows them to the end")
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    job = with_toolkit(args, lambda t: t.get_job(t.local_account(), args.job_id))
    if args.json:
        print(json.dumps(job_json(job) | {"account": job.account, "params": job.params, "request_id": job.request_id,
                                          "logs": job.logs, "created_at": job.created_at,
                                          "finished_at": job.finished_at}, indent=2))
    else:
        print(describe_job(job))
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    job, message = with_toolkit(args, lambda t: t.cancel_job(t.local_account(), args.job_id))
    print(f"job {job.id}: {message}")
    return 0


def register(commands: Any) -> None:
    """Add generate and jobs to the top-level parser."""
    generate = commands.add_parser(
        "generate", help="run one generation end to end",
        description="Run one generation with live progress on stderr. `videogen generate TOOL --help` lists "
                    "the model's parameters; add --simulate to try it free against the built-in simulator.")
    generate.add_argument("tool", metavar="TOOL", help="a tool name from `videogen models`")
    generate.add_argument("params", nargs=argparse.REMAINDER,
                          help="the model's parameters, then --json and/or --simulate")
    generate.set_defaults(func=cmd_generate)

    jobs = commands.add_parser("jobs", help="list, show, resume or cancel jobs", description="Work with job records.")
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
    resume = jobs_commands.add_parser(
        "resume", help="take over jobs whose owner is gone, now",
        description="Take over every unfinished job whose process stopped (its lease lapsed, or it exited): a job "
                    "never sent fails at no charge, one interrupted while being sent becomes unknown, and one at "
                    "the provider is checked and followed — for --follow-seconds, or to the end with --wait.")
    resume.add_argument("--wait", action="store_true", help="follow every resumed job to its end")
    resume.add_argument("--follow-seconds", type=float, default=10.0,
                        help="without --wait, how long to follow each resumed job (default 10)")
    resume.add_argument("--json", action="store_true", help="print JSON")
    resume.set_defaults(func=cmd_jobs_resume)
    cancel = jobs_commands.add_parser("cancel", help="cancel a job", description="Cancel a job at its provider.")
    cancel.add_argument("job_id", metavar="JOB")
    cancel.set_defaults(func=cmd_jobs_cancel)
