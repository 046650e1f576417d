"""Jobs, budgets and quotas as an LLM agent reads them: a few lines of text plus JSON data.

Pure functions over what the Toolkit returns. The MCP server and any other agent surface (a chat
loop) hand a job or the limits here and get the ``structured_content`` data (see
``agent.schemas.JOB_OUTPUT_SCHEMA``) and the short text a model reads, so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ..jobs import FINAL, Job, JobState
from ..ledger import LimitStatus, resets_phrase
from ..money import format_usd, to_usd

# -- budgets ---------------------------------------------------------------------------------

MONEY_KINDS = ("daily", "monthly")
WINDOW_WORDS = {"daily": "today", "monthly": "this month", "concurrent": "running at once",
                "hourly": "started in the last hour"}
SCOPE_WORDS = {"account": "", "role": "role ", "guild": "this server's ", "global": "the operator's "}


def budget_items(limits: Sequence[LimitStatus]) -> list[dict[str, Any]]:
    """Every limit that applies, as JSON: money in dollars, counts in jobs, resets as ISO time."""
    items = []
    for status in limits:
        money = status.kind in MONEY_KINDS
        convert = to_usd if money else (lambda v: v)
        items.append({
            "scope": status.scope, "kind": status.kind, "unit": "usd" if money else "jobs",
            "limit": convert(status.limit), "used": convert(status.used), "remaining": convert(status.remaining),
            "resets_at": (datetime.fromtimestamp(status.resets_at, timezone.utc).isoformat()
                          if status.resets_at is not None else None),
        })
    return items


def budget_text(limits: Sequence[LimitStatus], now: float, tz: ZoneInfo) -> str:
    """``Budget left: $3.60 of $5.00 today (resets at 00:00 UTC, in 3 h 12 min); …`` — one line."""
    money = [s for s in limits if s.kind in MONEY_KINDS]
    if not money:
        return "No spending limit applies to this account."
    parts = [f"{SCOPE_WORDS.get(s.scope, '')}{format_usd(s.remaining)} of {format_usd(s.limit)} "
             f"{WINDOW_WORDS[s.kind]} ({resets_phrase(s.resets_at, now, tz)})" for s in money]
    return "Budget left: " + "; ".join(parts) + "."


def quota_lines(limits: Sequence[LimitStatus], now: float, tz: ZoneInfo) -> list[str]:
    """One line per limit, for ``get_quota``."""
    if not limits:
        return ["No limits apply to this account: it can spend without a cap."]
    lines = []
    for s in limits:
        where = f"{s.scope} {s.scope_id}".strip() if s.scope != "account" else "you"
        if s.kind in MONEY_KINDS:
            lines.append(f"- {where}: {format_usd(s.used)} of {format_usd(s.limit)} spent {WINDOW_WORDS[s.kind]}, "
                         f"{format_usd(s.remaining)} left ({resets_phrase(s.resets_at, now, tz)})")
        else:
            lines.append(f"- {where}: {s.used} of {s.limit} jobs {WINDOW_WORDS[s.kind]}, {s.remaining} more allowed")
    return lines


def money_left(limits: Sequence[LimitStatus]) -> int | None:
    """The smallest amount any money limit still allows, in micros (None: no money limit)."""
    left = [s.remaining for s in limits if s.kind in MONEY_KINDS]
    return min(left) if left else None


# -- jobs ------------------------------------------------------------------------------------

NEXT_FOR_ERROR = {
    "content_policy": "The provider's safety filter refused it: rephrase the prompt (or use another input image) "
                      "and try again.",
    "invalid_input": "Fix the arguments the message names and try again.",
    "media_download_failed": "The provider could not download an input image: pass a public https:// URL "
                             "that opens without a login.",
    "authentication": "The provider refused the operator's API key: tell the operator; retrying will not help.",
    "out_of_balance": "The operator's provider account is out of credit: tell the operator; retrying will not help.",
    "rate_limited": "The provider is rate-limiting: wait a minute, then try again.",
    "transient": "A temporary provider failure: trying again in a minute usually works.",
}


def cost_of(job: Job) -> tuple[int, str]:
    """(micros, status): what the job costs and whether that is charged, reserved or nothing."""
    if job.state is JobState.SUCCEEDED:
        return (job.actual_micros if job.actual_micros is not None else job.estimate_micros), "charged"
    if job.state in (JobState.FAILED, JobState.CANCELLED):
        return 0, "not charged"
    return job.estimate_micros, "reserved"


def output_items(job: Job, *, show_paths: bool) -> list[dict[str, Any]]:
    items = []
    for output in job.outputs:
        item: dict[str, Any] = {"url": output.get("url") or "", "content_type": output.get("content_type"),
                                "width": output.get("width"), "height": output.get("height"),
                                "size_bytes": output.get("size")}
        if show_paths:
            item["path"] = output.get("path")
        items.append(item)
    return items


def next_step(job: Job, *, show_paths: bool = False) -> str:
    micros, _ = cost_of(job)
    if job.state is JobState.SUCCEEDED:
        kind = "images are ready; show the user the URLs" if len(job.outputs) > 1 else \
            "output is ready; show the user the URL"
        advice = " Provider URLs expire after a while (hours to days)" + (
            "; the local copy stays." if show_paths and any(o.get("path") for o in job.outputs) else ".")
        return f"Done: the {kind}.{advice}"
    if job.state is JobState.FAILED:
        return (NEXT_FOR_ERROR.get(job.error_kind or "", "Try again, or try another model.")
                + " Nothing was charged.")
    if job.state is JobState.CANCELLED:
        return "Cancelled; nothing was charged."
    if job.state is JobState.UNKNOWN:
        return ("The outcome is unknown (see error); do not simply retry, it may still produce output and be "
                f"charged. The {format_usd(micros)} stays reserved until an operator resolves it.")
    return (f"Not finished yet. Call wait_for_job with job_id \"{job.id}\" to keep waiting (up to 55 s per call), "
            f"get_job to check without waiting, or cancel_job to stop it. {format_usd(micros)} is reserved and "
            "charged only if it succeeds.")


def job_structured(job: Job, *, now: float, show_paths: bool, limits: Sequence[LimitStatus] | None = None,
                   warnings: Iterable[str] = (), message: str | None = None) -> dict[str, Any]:
    """A job as ``structured_content`` (see ``JOB_OUTPUT_SCHEMA``)."""
    micros, status = cost_of(job)
    data: dict[str, Any] = {
        "job_id": job.id, "state": job.state.value, "done": job.state in FINAL, "tool": job.tool,
        "cost_usd": to_usd(micros), "cost_status": status,
        "outputs": output_items(job, show_paths=show_paths),
        "seed": job.seed, "queue_position": job.queue_position,
        "elapsed_seconds": round(job.elapsed(now), 1),
        "error": job.error, "error_kind": job.error_kind, "provider": job.provider,
        "next_step": next_step(job, show_paths=show_paths),
        "warnings": list(warnings),
    }
    if message:
        data["message"] = message
    if job.failover_note:
        data["failover"] = job.failover_note
    if limits is not None:
        data["budget"] = budget_items(limits)
    if job.origin.get("simulated"):
        data["simulated"] = True
    return data


def job_text(job: Job, *, now: float, show_paths: bool, limits: Sequence[LimitStatus] | None = None,
             tz: ZoneInfo | None = None, warnings: Iterable[str] = (), message: str | None = None) -> str:
    """The few lines an LLM reads: state and cost, outputs, what to do next, the budget left."""
    micros, status = cost_of(job)
    head = f"Job {job.id} ({job.tool}): {job.state.value}"
    if job.state is JobState.QUEUED and job.queue_position is not None:
        head += f", queue position {job.queue_position + 1}"
    head += f" after {job.elapsed(now):.0f} s; {format_usd(micros)} {status}."
    if job.seed is not None:
        head += f" Seed {job.seed}."
    lines = [head]
    if message:
        lines.append(message)
    if job.failover_note:
        lines.append(job.failover_note)
    noun = "Image" if job.tool in _IMAGE_TOOLS else "Video"
    for i, output in enumerate(job.outputs):
        label = noun if len(job.outputs) == 1 else f"{noun} {i + 1}"
        lines.append(f"{label}: {output.get('url')}")
        if show_paths and output.get("path"):
            lines.append(f"  local file: {output['path']}")
    if job.error:
        lines.append(("Note: " if job.state is JobState.SUCCEEDED else "Error: ") + job.error)
    elif job.state is JobState.RUNNING and job.logs:
        lines.append(f"Latest log: {job.logs[-1][:200]}")
    lines.append(next_step(job, show_paths=show_paths))
    lines.extend(warnings)
    if limits is not None and tz is not None:
        lines.append(budget_text(limits, now, tz))
    if job.origin.get("simulated"):
        lines.append("SIMULATED: made by the local provider simulator, not a real model; nothing was billed.")
    return "\n".join(lines)


def _image_tools() -> frozenset[str]:
    from ..catalog import CATALOG, OutputKind

    return frozenset(t for t, s in CATALOG.items() if s.output.kind is OutputKind.IMAGES)


_IMAGE_TOOLS = _image_tools()


def job_line(job: Job, *, tz: ZoneInfo) -> str:
    """One line per job for ``list_jobs``."""
    micros, status = cost_of(job)
    when = datetime.fromtimestamp(job.created_at, tz).strftime("%Y-%m-%d %H:%M")
    tail = ""
    if job.outputs:
        tail = f" → {job.outputs[0].get('url')}"
    elif job.error:
        tail = f" — {job.error[:120]}"
    return f"- {job.id} {when} {job.tool}: {job.state.value}, {format_usd(micros)} {status}{tail}"


def job_summary(job: Job) -> dict[str, Any]:
    micros, status = cost_of(job)
    return {"job_id": job.id, "tool": job.tool, "state": job.state.value, "account": job.account,
            "cost_usd": to_usd(micros), "cost_status": status,
            "created_at": datetime.fromtimestamp(job.created_at, timezone.utc).isoformat(),
            "output_url": job.outputs[0].get("url") if job.outputs else None, "error": job.error}


def progress_message(job: Job, message: str, elapsed: float) -> str:
    """``[running · 12 s] job 1f2e…: step 3/10`` — what a host shows next to its spinner; the job id
    lets a client follow (or cancel) the job even if the call itself is lost."""
    state = job.state.value
    if job.state is JobState.QUEUED and job.queue_position is not None:
        state += f" #{job.queue_position + 1}"
    return f"[{state} · {elapsed:.0f} s] job {job.id}: {message}"


def cost_text(job: Job) -> str:
    """``$0.40`` — what the job costs (or has reserved) now."""
    return format_usd(cost_of(job)[0])
