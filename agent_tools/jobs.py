"""Jobs: a durable record of every generation and the tracker that carries it to its end.

A job row is written *before* the provider is called (state ``submitting``) and updated as soon as
the provider answers, so a crash can never lose a paid request: on the next start a job still in
``submitting`` is marked ``unknown`` for the operator (it may or may not exist at the provider —
never silently re-submitted or dropped), and every ``queued``/``running``/``fetching`` job is polled
again from the URLs saved in its row.

Several processes (the MCP server, the Discord bot, the CLI) may share one database. Each job is
leased to one process (``owner``, ``lease_until``): only the owner polls, fetches, downloads or
moves it, and every write it makes is conditional on still being the owner and renews the lease
(long downloads, and safety naps awaiting a provider callback, renew it on a timer). Another
process that wants the job (a ``wait_for_job``, a resume) watches the row instead, and takes the
job over only once the lease has lapsed — with ``db.claim_leases`` (a conditional UPDATE; on
PostgreSQL over rows locked ``FOR UPDATE SKIP LOCKED``), so exactly one process wins and claimers
never wait for each other. Every state change is one conditional ``UPDATE … WHERE state IN (…)``
in one transaction, together with its ``job_events`` row and, through ``Settlement``, the ledger's
settle or release — so a repeat or a race is a no-op, never a double charge.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .catalog import CATALOG
from .config import PollingSettings
from .db import (JOBS_CHANNEL, Database, DatabaseUnavailable, Transaction, claim_leases, listener, nudge,
                 placeholders)
from .errors import UserError
from .media import MediaError, MediaMismatch, MediaStore
from .providers.base import CancelOutcome, ProviderAdapter, RemoteState, RequestRef
from .providers.errors import SUBMIT_OUTCOME_UNKNOWN, ErrorKind, ProviderError, refused_unsent

log = logging.getLogger(__name__)

MAX_LOG_LINES = 200
LEASE_SECONDS = 120.0
SUBMIT_LEASE_SECONDS = 300.0
MAX_STATUS_FAILURES = 8
MAX_RESULT_ATTEMPTS = 4
MAX_DOWNLOAD_ATTEMPTS = 3
WATCH_SECONDS = 2.0
"""How often a process looks at the rows of its jobs napping until their callback (see ``_watch``)."""
JSON_COLUMNS = frozenset({"params", "outputs", "logs", "origin", "failover"})


class JobState(StrEnum):
    PENDING = "pending"  # recorded, not yet sent
    SUBMITTING = "submitting"  # being sent: a crash here leaves the outcome unknown
    QUEUED = "queued"
    RUNNING = "running"
    FETCHING = "fetching"  # the provider is done; result and outputs are being fetched
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # may or may not exist at the provider: for the operator to resolve


ACTIVE = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.FETCHING})
FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN})
UNFINISHED = frozenset({JobState.PENDING, JobState.SUBMITTING, *ACTIVE})


class LeaseLost(Exception):
    """Another process owns this job now: stop acting on it and only watch (never shown to users)."""


class JobNotFound(UserError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"No job '{job_id}' among your jobs; list your jobs to see their ids.")


@dataclass(frozen=True, slots=True)  # slots: thousands are alive at once, ~1 KB less each
class Job:
    id: str
    account: str
    tool: str
    provider: str
    endpoint_id: str
    params: dict[str, Any]
    state: JobState
    estimate_micros: int
    created_at: float
    updated_at: float
    request_id: str | None = None
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None
    queue_position: int | None = None
    logs: list[str] = field(default_factory=list)
    actual_micros: int | None = None
    hold_id: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    error_kind: str | None = None
    error: str | None = None
    cancel_requested: bool = False
    idempotency_key: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)
    submitted_at: float | None = None
    finished_at: float | None = None
    owner: str | None = None
    lease_until: float = 0.0
    failover: dict[str, Any] = field(default_factory=dict)
    """Set when the job runs on an equivalent endpoint: from_tool, from_provider, reason."""
    webhook: bool = False
    """Submitted with a provider callback URL: polled only as a slow safety net, woken by callbacks."""
    woken_at: float | None = None
    """When a verified callback first woke the job's tracker."""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        data = dict(row)
        for key in JSON_COLUMNS:
            data[key] = json.loads(data[key])
        data["state"] = JobState(data["state"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        data["webhook"] = bool(data.get("webhook", 0))
        return cls(**data)

    @property
    def ref(self) -> RequestRef:
        if not self.request_id:
            raise ValueError(f"job {self.id} has no provider request id")
        return RequestRef(self.provider, self.endpoint_id, self.request_id, self.status_url, self.result_url,
                          self.cancel_url)

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    def owner_gone(self, now: float) -> bool:
        """Unfinished, and the process that owned it stopped renewing its lease: nobody is tracking
        it until a process resumes it (``videogen jobs resume``, or any start-up)."""
        return not self.finished and self.lease_until < now

    def elapsed(self, now: float) -> float:
        return (self.finished_at or now) - self.created_at

    @property
    def failover_note(self) -> str | None:
        """Which provider ran the job and why, when it is not the one the user picked; else None."""
        if not self.failover:
            return None
        return (f"Ran on {self.provider} ({self.tool}) instead of {self.failover.get('from_provider')} "
                f"({self.failover.get('from_tool')}): {self.failover.get('reason')}.")

    @property
    def failover_brief(self) -> str | None:
        """The same in a few words for lists and cards (``on wavespeed instead of fal``); else None."""
        return f"on {self.provider} instead of {self.failover.get('from_provider')}" if self.failover else None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One thing a waiting surface may want to show: a state change, a queue move, new log lines."""

    job: Job
    message: str
    new_logs: tuple[str, ...] = ()
    elapsed: float = 0.0

    @property
    def state(self) -> JobState:
        return self.job.state


@dataclass(frozen=True)
class JobEventRow:
    """One stored state change of a job (``job_events``)."""

    from_state: str | None
    to_state: str
    detail: str | None
    at: float


class Nudge:
    """Set when a job's tracker should look now instead of at the end of its pause (a cancel or a
    callback, here or heard from another process). Setting it cuts the pause's sleep short; one
    task per pause and no event or deque per job, as every tracked job has one."""

    __slots__ = ("_set", "waiter")

    def __init__(self) -> None:
        self._set = False
        self.waiter: asyncio.Future[Any] | None = None
        """The sleep of the pause under way, if any."""

    def set(self) -> None:
        self._set = True
        if self.waiter is not None:
            self.waiter.cancel()

    def is_set(self) -> bool:
        return self._set

    def take(self) -> bool:
        """Whether it was set, clearing it."""
        was, self._set = self._set, False
        return was


class Inbox:
    """A waiter's events, in order (what ``subscribe`` returns): a list, and while the waiter
    waits one future. Every job being waited for has one, so it is kept lighter than an
    ``asyncio.Queue`` (four deques, and a getter task for every event)."""

    __slots__ = ("_events", "_ready")

    def __init__(self) -> None:
        self._events: list[JobEvent] = []
        self._ready: asyncio.Future[None] | None = None

    def put_nowait(self, event: JobEvent) -> None:
        self._events.append(event)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def empty(self) -> bool:
        return not self._events

    def get_nowait(self) -> JobEvent:
        return self._events.pop(0)

    def ready(self) -> asyncio.Future[None]:
        """A future that is done once there is an event to take (at once if there is one)."""
        if self._ready is None or self._ready.done():
            self._ready = asyncio.get_running_loop().create_future()
            if self._events:
                self._ready.set_result(None)
        return self._ready


class Settlement(Protocol):
    """The ledger's side of a job's transitions, run inside the same transaction: synchronous,
    on the database thread, so a transition and its settle cross to that thread once."""

    def on_submitted(self, conn: sqlite3.Connection, job: Job) -> None: ...

    def on_finished(self, conn: sqlite3.Connection, job: Job) -> None: ...


EventCallback = Callable[[JobEvent], Awaitable[None] | None]


@dataclass(frozen=True)
class Reroute:
    """Where a job refused unsent goes instead: the same model on another provider (the Toolkit's
    failover builds it). ``payload`` is the provider body (never stored); ``tx_hook`` runs in the
    transaction that moves the job (the ledger's hold follows it, or the move is refused)."""

    tool: str
    provider: str
    endpoint_id: str
    params: dict[str, Any]
    estimate_micros: int
    payload: dict[str, Any]
    reason: str
    tx_hook: Callable[[Transaction, "Job"], Awaitable[None]] | None = None


RerouteHook = Callable[["Job", ProviderError], Awaitable["Reroute | str | None"]]
"""Asked once when a submit is refused unsent: a ``Reroute``, or why not (str), or None (no equivalent)."""


def _state_message(job: Job) -> str:
    if job.state is JobState.QUEUED:
        return "queued" + (f" (position {job.queue_position + 1})" if job.queue_position is not None else "")
    if job.state is JobState.RUNNING:
        return "running" + (f": {job.logs[-1]}" if job.logs else "")
    if job.state is JobState.FETCHING:
        return "finished at the provider; fetching the output"
    if job.state in (JobState.FAILED, JobState.UNKNOWN) and job.error:
        return f"{job.state.value}: {job.error}"
    return job.state.value


class JobEngine:
    """Submits, tracks, cancels and resumes jobs for one process."""

    def __init__(self, db: Database, adapters: Mapping[str, ProviderAdapter], media: MediaStore, *,
                 polling: PollingSettings | None = None, settlement: Settlement | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 lease_seconds: float = LEASE_SECONDS, webhook_base: str | None = None,
                 safety_poll_seconds: float = 60.0, watch_seconds: float = WATCH_SECONDS) -> None:
        self.db = db
        self.adapters = adapters
        self.media = media
        self.polling = polling or PollingSettings()
        self.settlement = settlement
        self.clock = clock
        self.sleep = sleep
        self.lease_seconds = lease_seconds
        """How long a job stays this process's after its last write; renewed at a quarter of it."""
        self.owner = uuid.uuid4().hex
        self._tasks: dict[str, asyncio.Task[Job]] = {}
        self._finishing: set[asyncio.Task[None]] = set()  # submits finishing after their caller gave up
        self._subscribers: dict[str, list[Inbox]] = {}
        self._known: dict[str, Job] = {}
        """The last record read of each unfinished job at a provider, to name it if the database goes."""
        self._reported: set[str] = set()
        self._nudges: dict[str, Nudge] = {}
        """Job id → set when the job should be looked at now instead of after its pause: a callback
        received here, or another process's nudge (a callback or a cancel received there)."""
        self._listening: asyncio.Task[None] | None = None
        self.hearing = asyncio.Event()
        """Set while this process hears other processes' nudges (PostgreSQL's LISTEN is on)."""
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        """``[webhooks] public_url``: submits carry ``{base}/webhooks/{provider}`` as the callback."""
        self.safety_poll_seconds = safety_poll_seconds
        self.watch_seconds = watch_seconds
        self._napping: dict[str, tuple[float, float | None]] = {}
        """Jobs of this process in a safety nap → (updated_at, woken_at) of the row when it began."""
        self._watching: asyncio.Task[None] | None = None
        self._early: dict[tuple[str, str], float] = {}  # callbacks that beat the submit's answer

    # -- records ----------------------------------------------------------------------------

    async def create(self, *, account: str, tool: str, params: Mapping[str, Any], estimate_micros: int,
                     hold_id: str | None = None, idempotency_key: str | None = None,
                     origin: Mapping[str, Any] | None = None, failover: Mapping[str, Any] | None = None,
                     tx: Transaction | None = None) -> Job:
        """Record a job before anything is sent. ``params`` must already be public (secrets masked)."""
        body = lambda conn: self.create_in(  # noqa: E731
            conn, account=account, tool=tool, params=params, estimate_micros=estimate_micros, hold_id=hold_id,
            idempotency_key=idempotency_key, origin=origin, failover=failover)
        return await (tx.run(body) if tx is not None else self.db.run(body, quick=True))

    def create_in(self, conn: sqlite3.Connection, *, account: str, tool: str, params: Mapping[str, Any],
                  estimate_micros: int, hold_id: str | None = None, idempotency_key: str | None = None,
                  origin: Mapping[str, Any] | None = None, failover: Mapping[str, Any] | None = None) -> Job:
        """``create`` inside a transaction body on the database thread (a reservation's, say)."""
        spec = CATALOG[tool]
        now = self.clock()
        job = Job(id=uuid.uuid4().hex[:16], account=account, tool=tool, provider=spec.provider.value,
                  endpoint_id=spec.endpoint_id, params=dict(params), state=JobState.PENDING,
                  estimate_micros=estimate_micros, created_at=now, updated_at=now, hold_id=hold_id,
                  idempotency_key=idempotency_key, origin=dict(origin or {}), failover=dict(failover or {}))
        sql = ("INSERT INTO jobs(id, account, tool, provider, endpoint_id, params, state, estimate_micros, hold_id,"
               " idempotency_key, origin, failover, owner, lease_until, created_at, updated_at)"
               " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
        args = (job.id, account, tool, job.provider, job.endpoint_id, json.dumps(job.params), job.state.value,
                estimate_micros, hold_id, idempotency_key, json.dumps(job.origin), json.dumps(job.failover),
                self.owner, now + SUBMIT_LEASE_SECONDS, now, now)
        conn.execute(sql, args)
        self._event_in(conn, job.id, None, JobState.PENDING, "created", now)
        return job

    async def get(self, job_id: str) -> Job:
        try:
            row = await self.db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        except DatabaseUnavailable as exc:
            self._report(job_id, exc)
            raise
        if row is None:
            raise JobNotFound(job_id)
        return self._seen(Job.from_row(row))

    def _seen(self, job: Job) -> Job:
        if job.request_id and not job.finished:
            self._known[job.id] = job
        else:
            self._known.pop(job.id, None)
        return job

    async def find_by_idempotency_key(self, key: str) -> Job | None:
        row = await self.db.fetchone("SELECT * FROM jobs WHERE idempotency_key = ?", (key,))
        return None if row is None else Job.from_row(row)

    async def list(self, *, account: str | None = None, states: frozenset[JobState] | None = None,
                   limit: int = 20) -> list[Job]:
        where, args = [], []
        if account is not None:
            where.append("account = ?")
            args.append(account)
        if states:
            where.append(f"state IN ({placeholders(states)})")
            args.extend(s.value for s in states)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = await self.db.fetchall(f"SELECT * FROM jobs {clause} ORDER BY created_at DESC LIMIT ?", (*args, limit))
        return [Job.from_row(r) for r in rows]

    async def page(self, *, account: str | None, tools: frozenset[str] | None = None,
                   states: frozenset[JobState] | None = None, since: float | None = None,
                   until: float | None = None, before: tuple[float, str] | None = None,
                   limit: int = 24) -> tuple[list[Job], tuple[float, str] | None]:
        """One page of jobs, newest first, and the cursor of the next (older) page, or None.

        Keyset paging on ``(created_at, id)`` with the ``(account, created_at, id)`` index: a page
        reads ``limit`` rows however many jobs lie behind it (no OFFSET scan).
        """
        where, args = [], []
        if account is not None:
            where.append("account = ?")
            args.append(account)
        if tools:
            where.append(f"tool IN ({placeholders(tools)})")
            args.extend(sorted(tools))
        if states:
            where.append(f"state IN ({placeholders(states)})")
            args.extend(s.value for s in states)
        if since is not None:
            where.append("created_at >= ?")
            args.append(since)
        if until is not None:
            where.append("created_at < ?")
            args.append(until)
        if before is not None:
            where.append("(created_at, id) < (?, ?)")
            args.extend(before)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = await self.db.fetchall(f"SELECT * FROM jobs {clause} ORDER BY created_at DESC, id DESC LIMIT ?",
                                      (*args, limit + 1))
        jobs = [Job.from_row(row) for row in rows[:limit]]
        return jobs, ((jobs[-1].created_at, jobs[-1].id) if len(rows) > limit else None)

    async def events(self, job_id: str) -> list[JobEventRow]:
        """A job's state changes, oldest first: its timeline."""
        rows = await self.db.fetchall("SELECT from_state, to_state, detail, at FROM job_events WHERE job_id = ?"
                                      " ORDER BY seq", (job_id,))
        return [JobEventRow(*r) for r in rows]

    @staticmethod
    def _event_in(conn: sqlite3.Connection, job_id: str, old: JobState | None, new: JobState, detail: str,
                  now: float) -> None:
        conn.execute("INSERT INTO job_events(job_id, from_state, to_state, detail, at) VALUES (?,?,?,?,?)",
                     (job_id, old.value if old else None, new.value, detail, now))

    @staticmethod
    async def _event(tx: Transaction, job_id: str, old: JobState | None, new: JobState, detail: str,
                     now: float) -> None:
        await tx.execute("INSERT INTO job_events(job_id, from_state, to_state, detail, at) VALUES (?,?,?,?,?)",
                         (job_id, old.value if old else None, new.value, detail, now))

    async def _transition(self, job_id: str, to: JobState, from_states: frozenset[JobState] | set[JobState],
                          detail: str = "", *, owned: bool = True, **fields: Any) -> Job | None:
        """Move a job to ``to`` if it is in one of ``from_states``; None if it was not (a no-op).

        ``owned``: only while this process holds the job's lease (renewing it), else ``LeaseLost``.
        A cancel, which any process may record, passes ``owned=False`` and leaves the lease alone.
        """
        now = self.clock()
        if to in FINAL:
            fields.setdefault("finished_at", now)
        encoded = self._encode(fields, now, owned)
        sets = ", ".join(f"{k} = ?" for k in encoded)
        owner_clause, owner_args = (" AND owner = ?", (self.owner,)) if owned else ("", ())

        def body(conn: sqlite3.Connection) -> Job | None:  # one hop: the change, its event, the ledger's side
            row = conn.execute("SELECT state, owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            cursor = conn.execute(
                f"UPDATE jobs SET state = ?, updated_at = ?, {sets} WHERE id = ? AND state IN ({placeholders(from_states)})"
                + owner_clause,
                (to.value, now, *encoded.values(), job_id, *(s.value for s in from_states), *owner_args))
            if cursor.rowcount != 1:
                if owned and JobState(row["state"]) in from_states:
                    raise LeaseLost(job_id)
                return None
            self._event_in(conn, job_id, JobState(row["state"]), to, detail, now)
            job = Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
            if self.settlement is not None:
                if to is JobState.QUEUED and JobState(row["state"]) is JobState.SUBMITTING:
                    self.settlement.on_submitted(conn, job)
                elif to in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
                    self.settlement.on_finished(conn, job)
            return job

        job = await self.db.run(body, quick=True)
        return None if job is None else self._seen(job)

    async def _update(self, job_id: str, *, owned: bool = True, **fields: Any) -> Job:
        """Change fields of a job without a state change (queue position, logs, lease). ``owned``:
        only as the lease holder (and renew the lease), else ``LeaseLost``."""
        now = self.clock()
        encoded = self._encode(fields, now, owned)
        sets = "".join(f", {k} = ?" for k in encoded)
        owner_clause, owner_args = (" AND owner = ?", (self.owner,)) if owned else ("", ())

        def body(conn: sqlite3.Connection) -> Job:
            cursor = conn.execute(f"UPDATE jobs SET updated_at = ?{sets} WHERE id = ?" + owner_clause,
                                  (now, *encoded.values(), job_id, *owner_args))
            if cursor.rowcount != 1:
                if owned:
                    raise LeaseLost(job_id)
                raise JobNotFound(job_id)
            return Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

        return self._seen(await self.db.run(body, quick=True))

    def _encode(self, fields: dict[str, Any], now: float, owned: bool) -> dict[str, Any]:
        """Column values for an UPDATE: JSON columns serialised, and — for the owner — the lease
        renewed (unless the caller set it), because the owner writing a job is alive."""
        if owned:
            fields.setdefault("lease_until", now + self.lease_seconds)
        return {k: (json.dumps(v) if k in JSON_COLUMNS else v) for k, v in fields.items()}

    async def _claim(self, job_id: str, states: frozenset[JobState]) -> tuple[bool, Job]:
        """Make this process the job's owner if it is already, or if the owner's lease has lapsed;
        whether it is, and the row as it stands after, read in the same hop (the tracker starts
        polling without a second read). Not claimed also when another process is claiming it this
        moment (PostgreSQL passes over a row being claimed): the caller watches the job and asks
        again at its next look."""
        now = self.clock()

        def body(conn: sqlite3.Connection) -> tuple[bool, Job]:
            claimed = bool(claim_leases(
                conn, "jobs", "id", f"id = ? AND state IN ({placeholders(states)})", (job_id, *(s.value for s in states)),
                owner=self.owner, now=now, until=now + self.lease_seconds))
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            return claimed, Job.from_row(row)

        claimed, job = await self.db.run(body, quick=True)
        return claimed, self._seen(job)

    async def update_params(self, job_id: str, params: Mapping[str, Any]) -> Job:
        """Record the parameters as sent (uploaded URLs instead of local paths) before submitting."""
        return await self._update(job_id, params=dict(params))

    async def record_delivery(self, job_id: str, status: str, detail: str) -> Job:
        """A surface's last word on handing a finished job to its person (``failed: the channel was
        deleted; sent by DM``), kept in ``origin["delivery"]`` and as an event, so ``videogen jobs
        show`` says what became of a result that was paid for. Any process may write it."""
        now = self.clock()
        async with self.db.transaction() as tx:
            row = await (await tx.execute("SELECT origin, state FROM jobs WHERE id = ?", (job_id,))).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            origin = json.loads(row["origin"])
            origin["delivery"] = {"status": status, "detail": detail, "at": now}
            await tx.execute("UPDATE jobs SET origin = ?, updated_at = ? WHERE id = ?",
                             (json.dumps(origin), now, job_id))
            state = JobState(row["state"])
            await self._event(tx, job_id, state, state, f"delivery {status}: {detail}", now)
            return Job.from_row(await (await tx.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))).fetchone())

    async def fail_pending(self, job_id: str, detail: str, error: str) -> Job | None:
        """A job that failed before it was sent (an input upload, say): nothing is owed."""
        job = await self._transition(job_id, JobState.FAILED, {JobState.PENDING}, detail, actual_micros=0,
                                     error_kind=ErrorKind.INVALID_INPUT.value, error=error)
        if job is not None:
            self._emit(job)
        return job

    # -- events -----------------------------------------------------------------------------

    def subscribe(self, job_id: str) -> "Inbox":
        queue = Inbox()
        self._subscribers.setdefault(job_id, []).append(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: "Inbox") -> None:
        queues = self._subscribers.get(job_id, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            self._subscribers.pop(job_id, None)

    def _emit(self, job: Job, message: str | None = None, new_logs: tuple[str, ...] = ()) -> None:
        event = JobEvent(job, message or _state_message(job), new_logs, job.elapsed(self.clock()))
        for queue in self._subscribers.get(job.id, []):
            queue.put_nowait(event)

    # -- submit -----------------------------------------------------------------------------

    async def submit(self, job: Job, payload: Mapping[str, Any], *, reroute: RerouteHook | None = None) -> Job:
        """Send a pending job to its provider. ``payload`` is the provider body (secrets included;
        it is never stored). Returns the job queued, failed (refused: nothing to pay) or unknown.

        ``reroute``: asked when the provider refused the submit *certainly unsent* for a reason of
        its own (``refused_unsent``); a ``Reroute`` moves the job to the equivalent endpoint and
        sends it there, once. Never after an unknown outcome: that job may exist (and be billed)."""
        sending = await self._transition(job.id, JobState.SUBMITTING, {JobState.PENDING}, "sending to provider",
                                         lease_until=self.clock() + SUBMIT_LEASE_SECONDS)
        if sending is None:
            return await self.get(job.id)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Cancelled as the move to "submitting" committed: nothing was sent, so it ends here, free.
            await asyncio.shield(self._transition(job.id, JobState.CANCELLED, {JobState.SUBMITTING},
                                                  "cancelled before submit", actual_micros=0,
                                                  error="Cancelled before it was sent; nothing was charged."))
            raise asyncio.CancelledError()
        adapter = self.adapters[job.provider]
        callback = {"webhook_url": f"{self.webhook_base}/webhooks/{job.provider}"} if self.webhook_base else {}
        call = asyncio.ensure_future(adapter.submit(job.endpoint_id, dict(payload), **callback))
        try:
            ref = await asyncio.shield(call)
        except asyncio.CancelledError:
            if call.done():
                raise
            # The caller gave up while the request was on its way: the POST finishes on its own,
            # so the job gets its request id and a cancel can reach the provider (not "unknown").
            finishing = asyncio.create_task(self._finish_abandoned_submit(job, call))
            self._finishing.add(finishing)
            finishing.add_done_callback(self._finishing.discard)
            raise
        except ProviderError as exc:
            if _may_exist(exc):
                done = await self._transition(
                    job.id, JobState.UNKNOWN, {JobState.SUBMITTING}, "submit outcome unknown",
                    error_kind=exc.kind.value,
                    error=(f"{exc.message} The request may have reached {job.provider}; it was not resent, to avoid "
                           "paying twice. An operator can check the provider dashboard and resolve it."))
            else:
                why_not = None
                if reroute is not None and refused_unsent(exc):
                    moved, why_not = await self._reroute(job, exc, reroute)
                    if moved is not None:
                        return await self.submit(moved[0], moved[1])
                extra = f" It was not sent to another provider instead: {why_not}." if why_not else ""
                done = await self._transition(job.id, JobState.FAILED, {JobState.SUBMITTING}, "refused at submit",
                                              error_kind=exc.kind.value, error=exc.message + extra)
            job = done or await self.get(job.id)
            self._emit(job)
            return job
        except BaseException as exc:
            # Cancelled task or a bug mid-call: the provider may have the request. Record that.
            await asyncio.shield(self._transition(
                job.id, JobState.UNKNOWN, {JobState.SUBMITTING}, "submit interrupted", error_kind=ErrorKind.UNKNOWN.value,
                error=f"Submitting was interrupted ({type(exc).__name__}); the request may exist at {job.provider}."))
            raise
        try:
            queued = await self._transition(
                job.id, JobState.QUEUED, {JobState.SUBMITTING}, f"accepted as {ref.request_id}",
                request_id=ref.request_id, status_url=ref.status_url, result_url=ref.result_url,
                cancel_url=ref.cancel_url, submitted_at=self.clock(), webhook=1 if callback else 0)
        except DatabaseUnavailable as exc:
            self._known[job.id] = dataclasses.replace(job, request_id=ref.request_id)
            self._report(job.id, exc)
            raise
        except LeaseLost:
            queued = None  # taken over after a very long submit: the new owner records it
        job = queued or await self.get(job.id)
        if self._early.pop((job.provider, ref.request_id), None) is not None:
            self._nudge_here(job.id)  # its callback came first: look at once
        self._emit(job, f"submitted to {job.provider} as request {job.request_id}")
        return job

    async def _finish_abandoned_submit(self, job: Job, call: asyncio.Future[RequestRef]) -> None:
        """Record the outcome of a submit whose caller was cancelled, then honour the cancel
        (``cancel`` marks it on a job still submitting) or track the job like any other."""
        try:
            ref = await call
        except ProviderError as exc:
            state, detail = ((JobState.UNKNOWN, "submit outcome unknown") if _may_exist(exc)
                             else (JobState.FAILED, "refused at submit"))
            done = await self._transition(job.id, state, {JobState.SUBMITTING}, detail, error_kind=exc.kind.value,
                                          error=exc.message)
        except BaseException as exc:
            done = await self._transition(
                job.id, JobState.UNKNOWN, {JobState.SUBMITTING}, "submit interrupted", error_kind=ErrorKind.UNKNOWN.value,
                error=f"Submitting was interrupted ({type(exc).__name__}); the request may exist at {job.provider}.")
        else:
            done = await self._transition(
                job.id, JobState.QUEUED, {JobState.SUBMITTING}, f"accepted as {ref.request_id}",
                request_id=ref.request_id, status_url=ref.status_url, result_url=ref.result_url,
                cancel_url=ref.cancel_url, submitted_at=self.clock())
            if done is not None and done.cancel_requested:
                await self.cancel(done.id)
                return
            if done is not None:
                self.track(done.id)
        if done is not None:
            self._emit(done)

    async def _reroute(self, job: Job, exc: ProviderError,
                       hook: RerouteHook) -> tuple[tuple[Job, dict[str, Any]] | None, str | None]:
        """Move a job refused unsent to the endpoint ``hook`` picks, back to ``pending``, in one
        transaction with the ledger's side; ((job, payload), None), or (None, why not)."""
        try:
            plan = await hook(job, exc)
        except Exception:  # a broken failover must not hide the provider's own refusal
            log.exception("failover for job %s could not be prepared", job.id)
            return None, "preparing the failover failed"
        if not isinstance(plan, Reroute):
            return None, plan
        record = {"from_tool": job.tool, "from_provider": job.provider, "from_endpoint_id": job.endpoint_id,
                  "reason": plan.reason, "error_kind": exc.kind.value, "error": exc.message}
        now = self.clock()
        try:
            async with self.db.transaction() as tx:
                cursor = await tx.execute(
                    "UPDATE jobs SET state = ?, tool = ?, provider = ?, endpoint_id = ?, params = ?, estimate_micros = ?,"
                    " failover = ?, updated_at = ?, lease_until = ? WHERE id = ? AND state = ? AND owner = ?",
                    (JobState.PENDING.value, plan.tool, plan.provider, plan.endpoint_id, json.dumps(plan.params),
                     plan.estimate_micros, json.dumps(record), now, now + SUBMIT_LEASE_SECONDS, job.id,
                     JobState.SUBMITTING.value, self.owner))
                if cursor.rowcount != 1:
                    return None, "the job was taken over by another process"
                await self._event(tx, job.id, JobState.SUBMITTING, JobState.PENDING,
                                  f"failover to {plan.provider} ({plan.tool}): {plan.reason}", now)
                moved = Job.from_row(await (await tx.execute("SELECT * FROM jobs WHERE id = ?", (job.id,))).fetchone())
                if plan.tx_hook is not None:
                    await plan.tx_hook(tx, moved)
        except UserError as refused:  # the ledger refused the dearer run: nothing was moved
            return None, f"{plan.tool} would cost more than the limits allow ({refused.message})"
        self._emit(moved, f"{job.provider} refused the submit ({exc.kind.value}); sending it to {plan.provider} instead")
        return (moved, plan.payload), None

    # -- callbacks --------------------------------------------------------------------------

    async def find_by_request(self, provider: str, request_id: str) -> Job | None:
        row = await self.db.fetchone("SELECT * FROM jobs WHERE provider = ? AND request_id = ?", (provider, request_id))
        return None if row is None else Job.from_row(row)

    async def wake(self, job_id: str) -> bool:
        """A verified callback says the job ended: record it and let its tracker ask the provider
        now instead of at the next safety poll. False if it was already woken (a duplicate).

        The tracker may be in another process (the callback reached another replica or shard):
        it is nudged the way a cancel nudges it — PostgreSQL's NOTIFY at once; on SQLite its
        ``_watch`` sees ``woken_at`` on the row within ``watch_seconds``."""
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                f"UPDATE jobs SET woken_at = ? WHERE id = ? AND woken_at IS NULL AND state IN ({placeholders(UNFINISHED)})",
                (now, job_id, *(s.value for s in UNFINISHED)))
            row = await (await tx.execute("SELECT owner FROM jobs WHERE id = ?", (job_id,))).fetchone()
        if cursor.rowcount != 1:
            return False
        owner = row["owner"] if row is not None else None
        if owner == self.owner or job_id in self._tasks:
            self._nudge_here(job_id)
        if owner != self.owner:
            await nudge(self.db, JOBS_CHANNEL, job_id)
        return True

    def wake_request(self, provider: str, request_id: str) -> None:
        """A callback for a request whose submit answer is not recorded yet: wake it when it is."""
        self._early[(provider, request_id)] = self.clock()
        while len(self._early) > 10_000:
            self._early.pop(next(iter(self._early)))

    @property
    def napping(self) -> frozenset[str]:
        """Ids of this process's jobs in a safety nap: polled again only when nudged or at
        ``safety_poll_seconds``."""
        return frozenset(self._napping)

    @staticmethod
    def _awaits_callback(job: Job) -> bool:
        """Submitted with a callback URL and not being cancelled: a cancel is followed by polling
        at the usual pace (the provider ends the request, and may never call back for it)."""
        return job.webhook and not job.cancel_requested

    async def _nap(self, job: Job) -> bool:
        """The safety net's pause (``safety_poll_seconds``) of a job awaiting its callback; True if
        it ended early because the job was nudged (see ``_nudges``; on SQLite, by ``_watch``).
        ``job`` is the record as last seen, so a change another process makes meanwhile shows."""
        self._napping[job.id] = (job.updated_at, job.woken_at)
        if self._watching is None or self._watching.done():
            self._watching = asyncio.create_task(self._watch(), name="job-naps")
        try:
            return await self._pause(job.id, self.safety_poll_seconds)
        finally:
            self._napping.pop(job.id, None)

    async def _watch(self) -> None:
        """While jobs of this process nap (their polls may be minutes apart):

        - renew their leases every quarter lease in one UPDATE, so a nap longer than the lease is
          never taken for a dead owner;
        - where no NOTIFY is heard (SQLite, or PostgreSQL while LISTEN is down), look at their rows
          every ``watch_seconds`` in one SELECT and nudge each job another process wrote meanwhile:
          a callback it received (``woken_at``) or a cancel (``updated_at``). This is that
          database's NOTIFY: the owner hears within seconds, not at its next safety poll."""
        renewed = self.clock()
        tick = min(self.watch_seconds, self.lease_seconds / 4)
        try:
            while self._napping:
                await self.sleep(tick)
                napping = dict(self._napping)
                if not napping:
                    break
                now = self.clock()
                if now - renewed >= self.lease_seconds / 4:
                    await self._renew_leases(list(napping), now)
                    renewed = now
                if not self.hearing.is_set():
                    for job_id in await self._written_meanwhile(napping):
                        self._nudge_here(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next nap watches again; the safety polls carry on meanwhile
            log.warning("stopped watching napping jobs (%s); they are checked at their safety poll", exc)

    async def _renew_leases(self, job_ids: list[str], now: float) -> None:
        for chunk in _chunks(job_ids):
            async with self.db.transaction() as tx:
                await tx.execute(f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND id IN ({placeholders(chunk)})",
                                 (now + self.lease_seconds, self.owner, *chunk))

    async def _written_meanwhile(self, napping: Mapping[str, tuple[float, float | None]]) -> list[str]:
        written = []
        for chunk in _chunks(list(napping)):
            rows = await self.db.fetchall(
                f"SELECT id, updated_at, woken_at FROM jobs WHERE id IN ({placeholders(chunk)})", chunk)
            written += [r["id"] for r in rows if (r["updated_at"], r["woken_at"]) != napping[r["id"]]]
        return written

    # -- tracking ---------------------------------------------------------------------------

    def track(self, job_id: str, known: Job | None = None) -> asyncio.Task[Job]:
        """The one task following a job in this process (started if needed): it polls the provider
        while this process owns the job, and otherwise watches the database row. ``known``: the
        record the caller has just read or written, which the tracker's first look uses instead
        of reading it again."""
        task = self._tasks.get(job_id)
        if task is None or task.done():
            self._listen()
            task = asyncio.create_task(self._track(job_id, known), name=f"track-{job_id}")
            self._tasks[job_id] = task
            task.add_done_callback(self._tracker_done)
        return task

    def _tracker_done(self, task: asyncio.Task[Job]) -> None:
        job_id = task.get_name().removeprefix("track-")
        if self._tasks.get(job_id) is task:
            self._tasks.pop(job_id, None)
            self._nudges.pop(job_id, None)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so a waiter that already failed leaves no stray traceback
        if exc is not None and not isinstance(exc, UserError):
            log.error("tracking job %s failed", job_id, exc_info=exc)

    def _listen(self) -> None:
        """Hear other processes' nudges (a cancel, a callback) while this one follows jobs — on
        PostgreSQL; on SQLite there are none: a change is seen at the next poll, and a job napping
        until its callback is watched (``_watch``)."""
        if self._listening is None or self._listening.done():
            notes = listener(self.db, JOBS_CHANNEL)
            if notes is not None:
                self._listening = asyncio.create_task(self._hear(notes), name="job-nudges")

    async def _hear(self, notes: Any) -> None:
        try:
            async for job_id in notes:
                if job_id is None:
                    self.hearing.set()
                elif job_id in self._tasks:  # followed here: its next pause ends at once
                    self._nudge_here(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next track() listens again; polling carries on meanwhile
            log.warning("stopped hearing job nudges (%s); changes are seen at the next poll", exc)
        finally:
            self.hearing.clear()

    def _nudge_here(self, job_id: str) -> None:
        """Have this process's tracker of the job look now (its current or next pause ends)."""
        nudge = self._nudges.get(job_id)
        if nudge is None:
            nudge = self._nudges[job_id] = Nudge()
        nudge.set()

    async def _pause(self, job_id: str, seconds: float) -> bool:
        """Wait ``seconds`` between polls — less if another process nudges this job; True then."""
        nudge = self._nudges.get(job_id)
        if nudge is None:
            nudge = self._nudges[job_id] = Nudge()
        if not nudge.is_set():
            sleeping = asyncio.ensure_future(self.sleep(seconds))
            nudge.waiter = sleeping
            try:
                await asyncio.wait({sleeping})  # a nudge cancels the sleep; our own cancel still raises here
            finally:
                nudge.waiter = None
                sleeping.cancel()
        return nudge.take()

    async def wait(self, job_id: str, *, timeout: float | None = None,
                   on_event: EventCallback | None = None, known: Job | None = None) -> Job:
        """Follow a job until it finishes or ``timeout`` passes; returns its latest record.
        ``known``: the job's record as the caller has just read or written it (not read again)."""
        queue = self.subscribe(job_id)
        try:
            return await self._wait(job_id, queue, timeout, on_event, known)
        except DatabaseUnavailable as exc:
            self._report(job_id, exc)
            raise
        finally:
            self.unsubscribe(job_id, queue)

    async def _wait(self, job_id: str, queue: "Inbox", timeout: float | None,
                    on_event: EventCallback | None, known: Job | None) -> Job:
        job = known if known is not None and known.id == job_id else await self.get(job_id)
        if job.finished:
            return job
        task = self.track(job_id, job)
        deadline = None if timeout is None else self.clock() + timeout
        while not task.done():
            remaining = None if deadline is None else max(0.0, deadline - self.clock())
            if remaining == 0.0:
                break
            ready = queue.ready()
            done, _ = await asyncio.wait({ready, task}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if ready in done:
                await _call(on_event, queue.get_nowait())
            elif not done:
                break
        while not queue.empty():
            await _call(on_event, queue.get_nowait())
        if task.done() and not task.cancelled() and task.exception() is None and task.result().finished:
            return task.result()  # the tracker's last write: a finished job's latest record
        return await self.get(job_id)

    async def _track(self, job_id: str, known: Job | None = None) -> Job:
        try:
            return await self._follow(job_id, known)
        except DatabaseUnavailable as exc:
            self._report(job_id, exc)
            raise

    def _report(self, job_id: str, exc: DatabaseUnavailable) -> None:
        """Once per job: a job at the provider whose record can no longer be written."""
        job = self._known.get(job_id)
        if job is not None and job.request_id and job_id not in self._reported:
            self._reported.add(job_id)
            report_unrecorded(job, job.request_id, exc)

    async def _follow(self, job_id: str, known: Job | None = None) -> Job:
        """Own the job and drive it, or watch another process drive it (taking over if it dies).
        ``known``: a record just read or written, used for the first look instead of a read."""
        delay = self.polling.initial_seconds
        seen: Job | None = None
        while True:
            job, known = known if known is not None else await self.get(job_id), None
            if job.finished:
                if seen is not None and job != seen:
                    self._emit(job)
                return job
            if job.state in ACTIVE:
                claimed, job = await self._claim(job.id, ACTIVE)
                if claimed:
                    try:
                        return await self._drive(job)
                    except LeaseLost:
                        log.warning("job %s was taken over by another process; only watching it now", job_id)
                        seen = None
                        continue
                if job.finished:
                    known = job  # it ended meanwhile: the top of the loop says so, without a read
                    continue
            if job.state in (JobState.PENDING, JobState.SUBMITTING) and job.owner_gone(self.clock()):
                taken = await self._take_over(job.id, job.state)
                if taken is not None and taken.finished:
                    self._emit(taken)
                    return taken
                continue
            if seen is not None and job != seen:
                new_logs = tuple(job.logs[len(seen.logs):]) if len(job.logs) > len(seen.logs) else ()
                self._emit(job, new_logs=new_logs)
                delay = self.polling.initial_seconds
            seen = job
            await self._pause(job_id, delay)
            delay = min(delay * self.polling.factor, self.polling.max_seconds)

    async def _drive(self, job: Job) -> Job:
        """Poll, fetch and finish a job this process owns (``job``: its record as just claimed);
        ``LeaseLost`` the moment it does not."""
        job_id = job.id
        delay = self.polling.initial_seconds
        failures = 0
        adapter = self.adapters[job.provider]
        if self._awaits_callback(job) and job.state is JobState.QUEUED and job.woken_at is None:
            if await self._nap(job):  # its callback says when to look
                job = await self.get(job_id)
        while job.state in ACTIVE:
            try:
                if job.state is JobState.FETCHING:
                    return await self._fetch_owned(job, adapter)
                job, changed = await self._poll(job, adapter)
                failures = 0
                if changed:
                    continue  # act on a new state at once (e.g. fetch right after COMPLETED)
            except ProviderError as exc:
                failures += 1
                if not exc.retryable:
                    job = await self._transition(
                        job.id, JobState.UNKNOWN, ACTIVE, "status check refused", error_kind=exc.kind.value,
                        error=f"{exc.message} The job's state at {job.provider} could not be checked.") or await self.get(job_id)
                    self._emit(job)
                    return job
                if failures >= MAX_STATUS_FAILURES:
                    job = await self._update(job.id, error=f"Lost contact with {job.provider} after {failures} tries "
                                                          f"({exc.message}); the job is kept and will be checked again.")
                    self._emit(job, f"{job.provider} is not answering; the job is kept and will resume later")
                    return job
                self._emit(job, f"{job.provider} did not answer ({exc.kind.value}); retrying")
                await self.sleep(max(delay, exc.retry_after or 0))
            if self._awaits_callback(job):  # polling is only the safety net for a lost callback
                if await self._nap(job):
                    job = await self.get(job_id)
            elif await self._pause(job_id, delay):
                job = await self.get(job_id)  # another process changed it (a cancel): look before polling
            delay = min(delay * self.polling.factor, self.polling.max_seconds)
        return job

    async def _poll(self, job: Job, adapter: ProviderAdapter) -> tuple[Job, bool]:
        update = await adapter.status(job.ref)
        new_logs = tuple(update.logs[len(job.logs):]) if len(update.logs) >= len(job.logs) else tuple(update.logs)
        logs = (job.logs + list(new_logs))[-MAX_LOG_LINES:]
        if update.state is RemoteState.COMPLETED:
            moved = await self._transition(job.id, JobState.FETCHING, {JobState.QUEUED, JobState.RUNNING},
                                           "completed at provider", logs=logs, queue_position=None,
                                           error=update.error)
            job = moved or await self.get(job.id)
            self._emit(job, new_logs=new_logs)
            return job, True
        if update.state is RemoteState.RUNNING and job.state is JobState.QUEUED:
            moved = await self._transition(job.id, JobState.RUNNING, {JobState.QUEUED}, "started", logs=logs,
                                           queue_position=None)
            job = moved or await self.get(job.id)
            self._emit(job, new_logs=new_logs)
            return job, moved is not None
        if new_logs or update.queue_position != job.queue_position:
            job = await self._update(job.id, logs=logs, queue_position=update.queue_position)
            self._emit(job, new_logs=new_logs)
        elif self.clock() - job.updated_at > self.lease_seconds / 4:
            # Every write renews the lease (updated_at says when); an unchanged poll writes only when
            # the lease has aged, instead of one transaction per poll per job.
            job = await self._update(job.id)
        return job, False

    async def _fetch_owned(self, job: Job, adapter: ProviderAdapter) -> Job:
        """Fetch the result and download the outputs while renewing the lease every quarter of it,
        so a long download is never taken over; if the lease is lost anyway (this process stalled
        past it), the download stops at once and the new owner does it."""
        fetch = asyncio.ensure_future(self._fetch(job, adapter))
        try:
            while True:
                done, _ = await asyncio.wait({fetch}, timeout=self.lease_seconds / 4)
                if done:
                    return fetch.result()
                await self._update(job.id)
        except BaseException:
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)
            raise

    async def _fetch(self, job: Job, adapter: ProviderAdapter) -> Job:
        result = None
        for attempt in range(1, MAX_RESULT_ATTEMPTS + 1):
            try:
                result = await adapter.result(job.ref)
                break
            except ProviderError as exc:
                cancelled = exc.kind is ErrorKind.CANCELLED or (job.cancel_requested and exc.kind is not ErrorKind.CONTENT_POLICY)
                if exc.retryable and not cancelled and attempt < MAX_RESULT_ATTEMPTS:
                    await self.sleep(max(self.polling.initial_seconds * attempt, exc.retry_after or 0))
                    continue
                state = JobState.CANCELLED if cancelled else JobState.FAILED
                message = "Cancelled; nothing was charged." if cancelled else exc.message
                job = await self._transition(job.id, state, {JobState.FETCHING}, f"result: {exc.kind.value}",
                                             error_kind=None if cancelled else exc.kind.value,
                                             error=message, actual_micros=0) or await self.get(job.id)
                self._emit(job)
                return job
        assert result is not None
        kind = CATALOG[job.tool].output.kind.value if job.tool in CATALOG else "video"
        outputs, problems = [], []
        for index, output in enumerate(result.outputs):
            entry: dict[str, Any] = {"url": output.url, "path": None, "content_type": output.content_type,
                                     "width": output.width, "height": output.height}
            if result.nsfw(index):
                entry["nsfw"] = True  # the provider's flag: a surface decides how to show it
            for attempt in range(1, MAX_DOWNLOAD_ATTEMPTS + 1):
                try:
                    kept = await self.media.keep(job.id, index, output, kind)
                    entry.update(path=kept.path, content_type=kept.content_type, size=kept.size)
                    break
                except MediaMismatch as exc:
                    # Not the media that was asked for (an error page served as video/mp4): the
                    # generation did not deliver, so the job fails and nothing is charged.
                    job = await self._transition(job.id, JobState.FAILED, {JobState.FETCHING}, "output is not media",
                                                 error_kind=ErrorKind.MEDIA_DOWNLOAD_FAILED.value, actual_micros=0,
                                                 error=f"{exc.message} Nothing was charged.") or await self.get(job.id)
                    self._emit(job)
                    return job
                except MediaError as exc:
                    problems.append(exc.message)
                    break
                except Exception as exc:  # transport errors: retry, then keep the provider URL
                    if attempt == MAX_DOWNLOAD_ATTEMPTS:
                        problems.append(f"Downloading output {index + 1} failed ({type(exc).__name__}); "
                                        "the provider URL still works until it expires.")
                    else:
                        await self.sleep(self.polling.initial_seconds * attempt)
            outputs.append(entry)
        job = await self._transition(
            job.id, JobState.SUCCEEDED, {JobState.FETCHING}, f"{len(outputs)} output(s)", outputs=outputs,
            seed=result.seed, actual_micros=job.estimate_micros,
            error=("; ".join(problems) or None)) or await self.get(job.id)
        self._emit(job)
        return job

    # -- cancel -----------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> tuple[Job, str]:
        """Ask for a job to stop. Returns the job and a sentence on what happened."""
        job = await self.get(job_id)
        if job.finished:
            return job, f"Job {job.id} had already {job.state.value}; nothing to cancel."
        if job.state is JobState.PENDING:
            done = await self._transition(job.id, JobState.CANCELLED, {JobState.PENDING}, "cancelled before submit",
                                          owned=False, actual_micros=0, error="Cancelled before it was sent; nothing was charged.")
            if done is not None:
                self._emit(done)
                return done, "Cancelled before it was sent; nothing was charged."
            job = await self.get(job_id)
        job = await self._update(job.id, owned=False, cancel_requested=1)
        await nudge(self.db, JOBS_CHANNEL, job.id)  # the owner, if another process, looks now
        if job.state is JobState.SUBMITTING or not job.request_id:
            return job, "Cancellation noted; it will be sent as soon as the provider accepts the job."
        outcome = await self.adapters[job.provider].cancel(job.ref)
        await nudge(self.db, JOBS_CHANNEL, job.id)  # the provider has the request: the owner polls now
        if outcome is CancelOutcome.CANCELLED:
            done = await self._transition(job.id, JobState.CANCELLED, ACTIVE, "cancelled at provider", owned=False,
                                          actual_micros=0,
                                          error="Cancelled; nothing was charged.")
            await nudge(self.db, JOBS_CHANNEL, job.id)  # and stops following it
            job = done or await self.get(job.id)
            self._emit(job)
            return job, "Cancelled; nothing was charged."
        if outcome is CancelOutcome.REQUESTED:
            self.track(job.id)
            return job, "Cancellation requested; a job that is already running may still finish (and then be charged)."
        if outcome is CancelOutcome.ALREADY_COMPLETED:
            self.track(job.id)
            return job, "Too late to cancel: the provider had already finished the job."
        if outcome is CancelOutcome.UNSUPPORTED:
            return job, f"{job.provider} cannot cancel a submitted job; it will finish and be charged."
        return job, f"{job.provider} no longer knows this request; it will be checked again."

    async def end_at_no_charge(self, job_id: str, reason: str) -> Job | None:
        """End an unfinished or ``unknown`` job as failed and release its hold, whoever owns it.

        Only for jobs no provider can bill — the simulator's, once the simulator that ran them has
        stopped (``simulator.session``); a real job of unknown outcome is the operator's to resolve.
        """
        job = await self._transition(job_id, JobState.FAILED, UNFINISHED | {JobState.UNKNOWN}, "ended at no charge",
                                     owned=False, actual_micros=0, error_kind=ErrorKind.CANCELLED.value, error=reason)
        if job is not None:
            self._emit(job)
        return job

    # -- resume -----------------------------------------------------------------------------

    async def resume(self) -> list[Job]:
        """Take over every unfinished job whose lease has lapsed (its process is gone).

        pending → failed (never sent, nothing to pay); submitting → unknown (maybe sent);
        queued/running/fetching → tracked again from the URLs saved at submit time.
        """
        rows = await self.db.fetchall(
            f"SELECT id, state FROM jobs WHERE state IN ({placeholders(UNFINISHED)}) AND lease_until < ?",
            (*(s.value for s in UNFINISHED), self.clock()))
        resumed = []
        for row in rows:
            job = await self._take_over(row["id"], JobState(row["state"]))
            if job is not None:
                resumed.append(job)
        return resumed

    async def _take_over(self, job_id: str, state: JobState) -> Job | None:
        """Claim a job whose lease has lapsed (exactly one process wins) and carry it on; None if
        another process was first or the job moved on."""
        now = self.clock()
        claimed = await self.db.run(lambda conn: claim_leases(
            conn, "jobs", "id", "id = ? AND state = ?", (job_id, state.value),
            owner=self.owner, now=now, until=now + self.lease_seconds, renew=False), quick=True)
        if not claimed:
            return None
        if state is JobState.PENDING:
            return await self._transition(job_id, JobState.FAILED, {JobState.PENDING}, "interrupted before submit",
                                          actual_micros=0, error_kind=ErrorKind.TRANSIENT.value,
                                          error="Interrupted before it was sent to the provider; nothing was charged.")
        if state is JobState.SUBMITTING:
            return await self._transition(
                job_id, JobState.UNKNOWN, {JobState.SUBMITTING}, "interrupted during submit",
                error_kind=ErrorKind.UNKNOWN.value,
                error="The process stopped while sending this job; it may exist at the provider. It was not resent.")
        self.track(job_id)
        return await self.get(job_id)

    async def aclose(self) -> None:
        """Stop tracking and hand this process's unfinished jobs over: their leases end now, so the
        next process to resume (or to wait for one of them) takes them at once, not a lease later."""
        tasks = [*self._tasks.values(), *self._finishing,
                 *(task for task in (self._listening, self._watching) if task is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._listening = self._watching = None
        try:
            async with self.db.transaction() as tx:
                await tx.execute(f"UPDATE jobs SET lease_until = 0 WHERE owner = ? AND state IN ({placeholders(UNFINISHED)})",
                                 (self.owner, *(s.value for s in UNFINISHED)))
        except Exception as exc:  # a lost database: the leases lapse on their own
            log.warning("could not hand over this process's jobs (%s); they resume once their leases lapse", exc)


def report_unrecorded(job: Job, request_id: str | None, exc: BaseException) -> None:
    """A job the provider has (and may bill) whose record could not be written: say so on stderr
    with everything needed to find it at the provider, since the database cannot keep it."""
    where = f"request id {request_id}" if request_id else "no request id yet"
    message = (f"videogen: job {job.id} ({job.tool}) is at {job.provider} as {where}, endpoint {job.endpoint_id}, "
               f"but its record could not be written: {exc}")
    print(message, file=sys.stderr, flush=True)  # whatever logging is set up to do: this must be seen


def _may_exist(exc: ProviderError) -> bool:
    """Whether a failed submit may still have created a (billable) request at the provider.

    The adapters know: a connection that failed before the request was sent, or any refusal the
    provider answered, created nothing; a timeout or reset after sending is marked
    ``submit_outcome_unknown``.
    """
    return exc.error_type == SUBMIT_OUTCOME_UNKNOWN


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    """``IN (…)`` lists of at most ``size`` ids (a bound on statement parameters)."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


async def _call(callback: EventCallback | None, event: JobEvent) -> None:
    if callback is None:
        return
    try:
        result = callback(event)
        if asyncio.iscoroutine(result):
            await result
    except Exception:  # a broken progress display must not break the job
        log.exception("progress callback failed for job %s", event.job.id)
