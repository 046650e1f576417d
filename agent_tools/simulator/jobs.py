"""Simulated requests and their timeline, computed from the clock rather than driven by tasks.

A job never runs anything: its state at any moment follows from when it was submitted, its
scenario and whether it was cancelled. So 1,000 concurrent jobs cost 1,000 small records and no
timers, and polls are O(1).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .scenarios import Outcome, Scenario


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Snapshot:
    phase: Phase
    queue_position: int | None  # only while queued
    progress: float  # 0..1 of the run
    cancelled: bool  # done because of a cancel
    started_at: float | None  # clock time the run started (None if it never did)
    finished_at: float | None


@dataclass
class Job:
    """One submitted request, for either provider."""

    id: str
    provider: str  # "fal" | "wavespeed"
    endpoint_id: str
    app_base: str  # fal: [namespace/]owner/app; WaveSpeed: the model id
    input: dict[str, Any]
    scenario: Scenario
    output_kind: str  # "video" | "images"
    seed: int
    submitted: float  # clock
    submitted_wall: float  # time.time(), for timestamps shown to clients
    start_deadline: float | None = None  # fal X-Fal-Request-Timeout, seconds after submit
    queue_seconds: float = 0.0
    cancel_seconds: float = 0.0
    cancel_requested: float | None = None
    flaky_left: int = 0
    urls: dict[str, str] = field(default_factory=dict)  # what the provider returned at submit
    webhook: str | None = None  # recorded, not called

    # -- timeline ---------------------------------------------------------------------------
    @property
    def queue_end(self) -> float:
        end = self.submitted + self.queue_seconds * (self.scenario.queue_position + 1)
        if self.start_deadline is not None:
            end = min(end, self.submitted + self.start_deadline)
        return end

    @property
    def never_starts(self) -> bool:
        """user_timeout: the start deadline passes while still queued."""
        if self.scenario.outcome is Outcome.USER_TIMEOUT:
            return True
        natural = self.submitted + self.queue_seconds * (self.scenario.queue_position + 1)
        return self.start_deadline is not None and self.submitted + self.start_deadline < natural

    @property
    def outcome(self) -> Outcome:
        return Outcome.USER_TIMEOUT if self.never_starts else self.scenario.outcome

    def snapshot(self, now: float) -> Snapshot:
        queue_end = self.queue_end
        run_end = queue_end if self.never_starts else queue_end + self.scenario.run_seconds
        cancel = self.cancel_requested
        if cancel is not None and cancel < queue_end:
            return Snapshot(Phase.DONE, None, 0.0, True, None, cancel)  # removed from the queue
        if cancel is not None and cancel + self.cancel_seconds < run_end:
            run_end, cancelled = cancel + self.cancel_seconds, True
        else:
            cancelled = False
        if now < queue_end:
            per_position = self.queue_seconds or 1.0
            ahead = self.scenario.queue_position - int((now - self.submitted) / per_position)
            return Snapshot(Phase.QUEUED, max(0, ahead), 0.0, False, None, None)
        started = None if self.never_starts else queue_end
        if now < run_end:
            run = run_end - queue_end
            return Snapshot(Phase.RUNNING, None, (now - queue_end) / run if run else 1.0, False, started, None)
        return Snapshot(Phase.DONE, None, 1.0, cancelled, started, run_end)

    def wall(self, clock_time: float) -> float:
        """A clock time as wall-clock seconds since the epoch."""
        return self.submitted_wall + (clock_time - self.submitted)

    def iso(self, clock_time: float) -> str:
        stamp = dt.datetime.fromtimestamp(self.wall(clock_time), dt.UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def take_flaky(self) -> bool:
        """Whether this poll should fail (and count it)."""
        if self.flaky_left > 0:
            self.flaky_left -= 1
            return True
        return False

    def log_lines(self, now: float, steps: int) -> list[tuple[float, str]]:
        """(clock time, message) log lines produced so far by a run."""
        snap = self.snapshot(now)
        if snap.started_at is None:
            return []
        lines = [(snap.started_at, f"Simulated runner started for {self.endpoint_id}")]
        end = snap.finished_at if snap.finished_at is not None else now
        run = max(self.scenario.run_seconds, 1e-9)
        done = min(steps, math.floor(steps * (end - snap.started_at) / run + 1e-9))
        lines.extend((snap.started_at + run * k / steps, f"step {k}/{steps}") for k in range(1, done + 1))
        if snap.phase is Phase.DONE:
            lines.append((end, "Cancelled by client" if snap.cancelled else "Generation finished"))
        return lines
