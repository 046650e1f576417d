"""The SQLite file: one connection per process on its own thread, WAL, explicit write transactions.

Why these choices (see the ledger design notes): every read-then-write runs in ``BEGIN IMMEDIATE``
so concurrent writers queue on ``busy_timeout`` instead of failing with "database is locked"; WAL
lets readers (``/quota``, ``get_job``) run while a writer commits.

The connection is the stdlib ``sqlite3`` on one dedicated thread, and a transaction crosses to
that thread once: ``run(body)`` runs ``BEGIN IMMEDIATE; body(conn); COMMIT`` (``ROLLBACK`` on any
error) as one call there, so a reservation, a settle or a job transition costs one thread hop
instead of one per statement (each hop is ~100 µs; a reserve used to make a dozen). The older
``async with transaction() as tx: await tx.execute(…)`` form still works (each statement one
hop, its rows fetched in the same hop); an ``asyncio.Lock`` keeps two coroutines from mixing
statements inside one such transaction. A quick body (``run(quick=True)``: a reservation, a settle,
a job transition) skips even that hop when the connection is free and the write lock can be had
at once: the two thread switches cost more than its SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import queue
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from .errors import UserError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_EVERY = 100
"""Committed writes between two WAL checkpoints: a ledger or job write commits about 10 pages, so
this is near the 1,000 pages after which SQLite's own automatic checkpoint (off: see
``Database._committed``) would run."""

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs — one row per generation, every provider detail needed to resume it after a restart.
    """
    CREATE TABLE jobs(
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        tool TEXT NOT NULL,
        provider TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        params TEXT NOT NULL,
        state TEXT NOT NULL CHECK(state IN ('pending','submitting','queued','running','fetching',
                                            'succeeded','failed','cancelled','unknown')),
        request_id TEXT,
        status_url TEXT,
        result_url TEXT,
        cancel_url TEXT,
        queue_position INTEGER,
        logs TEXT NOT NULL DEFAULT '[]',
        estimate_micros INTEGER NOT NULL CHECK(estimate_micros >= 0),
        actual_micros INTEGER,
        hold_id TEXT,
        outputs TEXT NOT NULL DEFAULT '[]',
        seed INTEGER,
        error_kind TEXT,
        error TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        idempotency_key TEXT UNIQUE,
        origin TEXT NOT NULL DEFAULT '{}',
        owner TEXT,
        lease_until REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        submitted_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_account_created ON jobs(account, created_at);
    CREATE INDEX jobs_state ON jobs(state);
    CREATE TABLE job_events(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id),
        from_state TEXT,
        to_state TEXT NOT NULL,
        detail TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX job_events_job ON job_events(job_id, seq);
    """,
    # 2: the ledger — accounts and their identities, hashed tokens, limit overrides, holds, audit.
    """
    CREATE TABLE accounts(
        name TEXT PRIMARY KEY,
        created_at REAL NOT NULL
    );
    CREATE TABLE identities(
        kind TEXT NOT NULL CHECK(kind IN ('discord')),
        external_id TEXT NOT NULL,
        account TEXT NOT NULL REFERENCES accounts(name),
        created_at REAL NOT NULL,
        PRIMARY KEY(kind, external_id)
    );
    CREATE TABLE tokens(
        token_hash TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts(name),
        label TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        last_used_at REAL,
        revoked_at REAL
    );
    CREATE TABLE limits(
        scope TEXT NOT NULL CHECK(scope IN ('account','role','guild','global')),
        scope_id TEXT NOT NULL,
        daily_micros INTEGER CHECK(daily_micros >= 0),
        monthly_micros INTEGER CHECK(monthly_micros >= 0),
        concurrent_jobs INTEGER CHECK(concurrent_jobs >= 0),
        jobs_per_hour INTEGER CHECK(jobs_per_hour >= 0),
        warn_at REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY(scope, scope_id)
    );
    CREATE TABLE holds(
        id TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        account TEXT NOT NULL,
        guild_id TEXT,
        tool TEXT NOT NULL,
        estimate_micros INTEGER NOT NULL CHECK(estimate_micros >= 0),
        actual_micros INTEGER CHECK(actual_micros >= 0),
        state TEXT NOT NULL CHECK(state IN ('held','submitted','settled','released')),
        job_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX holds_account_created ON holds(account, created_at);
    CREATE INDEX holds_guild_created ON holds(guild_id, created_at);
    CREATE INDEX holds_created ON holds(created_at);
    CREATE INDEX holds_state ON holds(state);
    CREATE TABLE audit(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        hold_id TEXT,
        account TEXT,
        event TEXT NOT NULL,
        amount INTEGER,
        detail TEXT NOT NULL DEFAULT '',
        actor TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL
    );
    CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
    CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END
    
    """,
    # 3: the Discord bot's bookkeeping — which jobs still await a post, and small facts (the hash
    # of the last synced command payload). One migration list, so every table has one definition.
    """
    CREATE TABLE discord_deliveries(job_id TEXT PRIMARY KEY, created_at REAL NOT NULL, delivered_at REAL,
                                    message_id TEXT);
    CREATE TABLE discord_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL)
    """,
    # 4: running spend totals per (scope, scope id, period) — see totals.py. The ledger fills them
    # from the existing holds on first use (the periods depend on the configured time zone).
    """
    CREATE TABLE spend_totals(
        scope TEXT NOT NULL CHECK(scope IN ('account','guild','global')),
        scope_id TEXT NOT NULL,
        period TEXT NOT NULL,
        charge_micros BIGINT NOT NULL,
        holds BIGINT NOT NULL,
        open_holds BIGINT NOT NULL,
        PRIMARY KEY(scope, scope_id, period)
    );
    CREATE TABLE ledger_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)
    """,
    # 5: the Discord bot on public servers — per-guild rules (allowed channels and models, banned
    # words), per-user defaults, price cards waiting for Run, and notices a user has still to see
    # (a result that could not be posted where it was asked for).
    """
    CREATE TABLE discord_rules(guild_id TEXT NOT NULL, kind TEXT NOT NULL CHECK(kind IN ('channel','model','word')),
                               value TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY(guild_id, kind, value));
    CREATE TABLE discord_user_settings(user_id TEXT PRIMARY KEY, settings TEXT NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE discord_cards(id TEXT PRIMARY KEY, user_id TEXT NOT NULL, tool TEXT NOT NULL,
                               arguments TEXT NOT NULL, note TEXT, created_at REAL NOT NULL, expires_at REAL NOT NULL,
                               state TEXT NOT NULL CHECK(state IN ('open','run','cancelled')));
    CREATE TABLE discord_notices(seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, job_id TEXT NOT NULL,
                                 text TEXT NOT NULL, created_at REAL NOT NULL, shown_at REAL);
    CREATE INDEX discord_notices_user ON discord_notices(user_id, shown_at)
    """,
    # 6: a delivery claim — the bot process that posts a job's result holds a lease on its row, so
    # several bot processes on one database post each result once (bots/discord/state.py).
    """
    ALTER TABLE discord_deliveries ADD COLUMN owner TEXT;
    ALTER TABLE discord_deliveries ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;
    CREATE INDEX discord_deliveries_undelivered ON discord_deliveries(delivered_at, lease_until)
    """,
    # 7: failover — a job sent to the same model on another provider records where it was meant to
    # run and why it moved (from_tool, from_provider, reason, the refusal), as JSON; {} if it did not.
    """
    ALTER TABLE jobs ADD COLUMN failover TEXT NOT NULL DEFAULT '{}'
    """,
    # 8: the chat agent's conversations (one per Discord thread or terminal session) and their
    # messages, stored exactly as they are replayed to the language model, so a restart continues.
    """
    CREATE TABLE chat_conversations(id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, account TEXT NOT NULL,
                                    surface TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE chat_messages(conversation_id TEXT NOT NULL REFERENCES chat_conversations(id), seq INTEGER NOT NULL,
                               role TEXT NOT NULL CHECK(role IN ('user','assistant','tool')), message TEXT NOT NULL,
                               model TEXT, input_tokens INTEGER, output_tokens INTEGER, cost_micros INTEGER,
                               created_at REAL NOT NULL, PRIMARY KEY(conversation_id, seq))
    """,
    # 9: the dashboard pages an account's jobs newest first by (created_at, id), a key any SQL
    # database has (not SQLite's rowid); this index serves it and everything the old one did.
    """
    CREATE INDEX jobs_account_created_id ON jobs(account, created_at, id);
    DROP INDEX jobs_account_created
    """,
    # 10: reconciliation — what each provider billed beside what the user was charged: fal per
    # request (provider_charges), WaveSpeed per UTC day and model (provider_usage). See reconcile.py.
    """
    CREATE TABLE provider_charges(job_id TEXT PRIMARY KEY REFERENCES jobs(id), provider TEXT NOT NULL,
                                  request_id TEXT NOT NULL, charged_micros INTEGER NOT NULL,
                                  billed_micros INTEGER NOT NULL CHECK(billed_micros >= 0),
                                  checked_at REAL NOT NULL, applied_at REAL);
    CREATE TABLE provider_usage(provider TEXT NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL,
                                jobs INTEGER NOT NULL, charged_micros INTEGER NOT NULL,
                                requests INTEGER NOT NULL, billed_micros INTEGER NOT NULL,
                                checked_at REAL NOT NULL, PRIMARY KEY(provider, day, model))
    """,
    # 11: provider callbacks — a job submitted with a callback URL (polled only as a safety net), when a
    # verified callback woke it, jobs found by their provider request id, and the deliveries seen in
    # the timestamp window (a replay is refused in every process). See agent_tools/webhooks/.
    """
    ALTER TABLE jobs ADD COLUMN webhook INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN woken_at REAL;
    CREATE INDEX jobs_request ON jobs(provider, request_id);
    CREATE TABLE webhook_seen(key TEXT PRIMARY KEY, provider TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX webhook_seen_at ON webhook_seen(at)
    """,
)


def redeliver(cancelled: asyncio.CancelledError) -> None:
    """Deliver a ``CancelledError`` this task caught and kept from its caller again, at its next
    ``await``, as the same cancellation: same message, same count of pending cancel requests.

    A plain ``task.cancel()`` would add a request nobody made. anyio's cancel scopes (the MCP
    SDK's per-request scope) and ``asyncio.timeout`` then see more requests than their own and,
    taking it for an outside cancel, let it escape instead of absorbing it: an MCP client's
    cancel of one call then ended its whole session. Withdrawing the caught request first and
    repeating its message keeps the cancellation recognisably theirs."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
        task.cancel(*cancelled.args[:1])


class DatabaseUnavailable(UserError):
    """The database cannot be opened or written: nothing paid may be submitted until it can."""


class DatabaseLost(DatabaseUnavailable):
    """The database file was deleted or replaced under this process: whatever it would write now
    would go to a file nobody can see, so it refuses every further read and write."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"The database file {path} was deleted or replaced while this process was using it; videogen stopped "
            "before recording or submitting anything more. Put the file back (or let a fresh one be created) and "
            "start again; any job already sent is named above with its provider request id.")


def made_by_a_newer_version(version: int) -> DatabaseUnavailable:
    """A schema past the migrations this videogen knows: refused on either engine, because running
    older code against tables it does not know could write what the newer code cannot read."""
    return DatabaseUnavailable(f"This database was made by a newer videogen (schema version {version}, this one "
                               f"knows {len(MIGRATIONS)}); upgrade videogen.")


def _unavailable(path: Path, exc: BaseException) -> DatabaseUnavailable:
    text = str(exc)
    if "locked" in text or "busy" in text:
        hint = "another process holds a write lock for too long; retry, or stop the process holding it"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        hint = "the file is not a usable SQLite database; move it aside (keep it for recovery) or set VIDEOGEN_DB"
    elif "full" in text:
        hint = f"the disk holding {path.parent} is full; free some space, then retry"
    elif "disk I/O" in text:
        hint = "the disk reported an error (removed, failing or full); check it, then retry"
    elif "readonly" in text or "permission" in text.lower() or "unable to open" in text:
        hint = "check that the file and its directory are writable, or set VIDEOGEN_DB to another path"
    else:
        hint = "check the file, or point VIDEOGEN_DB at another path"
    return DatabaseUnavailable(f"The database {path} cannot be used ({text}): {hint}.")


T = TypeVar("T")


class Cursor:
    """What an ``execute`` in a ``transaction()`` returns: its rows, fetched in the same hop."""

    def __init__(self, rows: list[sqlite3.Row], rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    async def fetchone(self) -> sqlite3.Row | None:
        return self._rows.pop(0) if self._rows else None

    async def fetchall(self) -> list[sqlite3.Row]:
        rows, self._rows = self._rows, []
        return rows


def _execute(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Cursor:
    cursor = conn.execute(sql, args)
    rows = cursor.fetchall()
    return Cursor(rows, cursor.rowcount, cursor.lastrowid)


class Transaction:
    """An open ``BEGIN IMMEDIATE`` transaction on the database thread (from ``transaction()``)."""

    def __init__(self, db: "Database") -> None:
        self._db = db

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        return await self._db._hop(_execute, self._db._conn, sql, args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db._hop(self._db._conn.executemany, sql, list(rows))

    async def run(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run a synchronous ``body(conn)`` inside this transaction, in one hop."""
        return await self._db._hop(body, self._db._conn)


class _Abandoned(Exception):
    """The caller was cancelled while the transaction waited for the write lock: nothing was done."""


class _NotQuick(Exception):
    """Raised by ``not_quick_from_here`` inside a quick body on the event loop's thread: roll back
    and run the body again on the database thread."""


_ON_LOOP = contextvars.ContextVar("videogen_quick_body_on_loop", default=False)


def not_quick_from_here() -> None:
    """Inside a transaction body, before work that may take long (rebuilding every running total
    from the holds, say): if the body is running quick on the event loop's thread, stop it; its
    transaction rolls back and the whole body runs again on the database thread, where a long
    body stops no other task. Elsewhere (the database thread, PostgreSQL), nothing happens. The
    body runs twice then: what it did before this call must be SQL only (the rollback undoes it)."""
    if _ON_LOOP.get():
        raise _NotQuick()


class DatabaseThread:
    """The one thread that owns a process's connection: calls run there one at a time, in the order
    they were asked, and each result reaches the asking event loop with one wake-up.

    Why not ``loop.run_in_executor`` on a one-worker pool: every hop there also builds a
    ``concurrent.futures.Future``, chains it to an asyncio one and copies its state across, which
    cost about as much again as the hop itself. As with an executor, a call whose future was
    cancelled before the thread reached it is skipped.

    ``idle`` says whether the thread has nothing of ours queued or running, so the event loop may
    use the connection itself (``Database.run(quick=True)``). A call counts until the thread has
    finished with it and said so on the loop, skipped calls included: a cancelled future does not
    mean the thread has let go of the connection.
    """

    def __init__(self, name: str = "videogen-db") -> None:
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outstanding = _Outstanding()
        # the thread holds the queue, not this object: an owner dropped without ``stop`` ends it too
        thread = threading.Thread(target=_serve, args=(self._calls,), name=name, daemon=True)
        thread.start()
        weakref.finalize(self, self._calls.put, None)

    @property
    def idle(self) -> bool:
        return self._outstanding.count == 0

    def call(self, fn: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
        """Queue ``fn(*args)`` for the thread; the future answers on the running loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._outstanding.count += 1  # on the loop's thread only, like its decrement in ``_answer``
        self._calls.put((loop, future, fn, args, self._outstanding))
        return future

    def stop(self) -> None:
        """End the thread once the calls already queued have run."""
        self._calls.put(None)


class _Outstanding:
    """How many calls the database thread has not yet finished, as the event loop knows it."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


_SKIPPED = object()


def _serve(calls: "queue.SimpleQueue[Any]") -> None:
    while (item := calls.get()) is not None:
        loop, future, fn, args, outstanding = item
        del item
        result, error = _SKIPPED, None
        if not future.cancelled():
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the caller, as an executor would
                result, error = None, exc
        try:
            loop.call_soon_threadsafe(_answer, future, result, error, outstanding)
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting for this answer
        del loop, future, fn, args, result, error, outstanding


def _answer(future: "asyncio.Future[Any]", result: Any, error: BaseException | None,
            outstanding: _Outstanding) -> None:
    outstanding.count -= 1
    if future.cancelled() or result is _SKIPPED:
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Progress:
    """How far a ``run`` body has gone, shared by the event loop and the database thread (each flag
    is written by one side only, and the GIL orders the reads)."""

    __slots__ = ("started", "abandoned", "committed", "result")

    def __init__(self) -> None:
        self.started = self.abandoned = self.committed = False
        self.result: Any = None


def _nothing() -> None:
    """Queued after a call to learn when that call is over (the thread runs calls in order)."""


class Database:
    """A process's connection to the videogen database."""

    quick_on_loop = True
    """Whether ``run(quick=True)`` may run a body on the event loop's thread. False sends every body
    to the database thread: for a test that holds a commit there to land a cancel in it, or a file
    on a network share whose every write may stall."""

    def __init__(self, path: Path, conn: sqlite3.Connection, thread: DatabaseThread, *,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._conn = conn
        self._thread = thread
        self._busy_timeout_ms = busy_timeout_ms
        self._commits = 0
        self._lock = asyncio.Lock()
        self._closed = False
        self._identity = _file_identity(path)
        self._lost = False

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout_ms: int | None = None) -> "Database":
        path = Path(path).expanduser()
        busy_timeout_ms = BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        thread = DatabaseThread()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = await thread.call(_connect, path, busy_timeout_ms)
        except (OSError, sqlite3.Error) as exc:
            thread.stop()
            raise _unavailable(path, exc) from None
        db = cls(path, conn, thread, busy_timeout_ms=busy_timeout_ms)
        try:
            await db._hop(_configure, conn, busy_timeout_ms)
            await db._migrate()
        except (OSError, sqlite3.Error) as exc:
            await db.close()
            raise _unavailable(path, exc) from None
        except BaseException:
            await db.close()
            raise
        return db

    def _check_file(self) -> None:
        """Stop at once if the file this connection writes is no longer the one at ``path`` (deleted,
        or replaced by a copy): SQLite would go on writing into the unlinked file without a word."""
        if not self._lost and _file_identity(self.path) != self._identity:
            self._lost = True
        if self._lost:
            raise DatabaseLost(self.path)

    async def _hop(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` on the database thread."""
        if self._closed and fn != self._conn.close:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return await self._thread.call(fn, *args)

    async def _rollback(self) -> None:
        await self._hop(_rollback, self._conn)

    async def close(self) -> None:
        """Close the connection and end its thread; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._hop(self._conn.close)
        finally:
            self._thread.stop()

    async def __aenter__(self) -> "Database":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _migrate(self) -> None:
        def migrate(conn: sqlite3.Connection) -> None:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise made_by_a_newer_version(version)
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

        await self.run(migrate)

    async def run(self, body: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """One write transaction in one hop: ``BEGIN IMMEDIATE``, ``body(conn)``, ``COMMIT`` — or
        ``ROLLBACK`` if the body raises (its exception is re-raised here). The body is synchronous
        and runs on the database thread; it must not await or block on anything but SQLite.

        ``quick`` is for a body of a few indexed statements (a reservation, a settle, a job
        transition): when nothing else of this process is using the connection, it runs on the
        event loop's own thread, without the two thread switches of a hop (about 85 µs of CPU each,
        more than such a body's own SQL), provided the write lock is free at once. If another
        process holds the lock, the body goes to the database thread as usual and waits there, so
        the event loop never sleeps in SQLite's busy handler; nor does it checkpoint the WAL
        (``_committed`` queues that for the thread). A body that may read or write much (a rebuild,
        a report, a migration) must not be quick: it would hold up every other task meanwhile.

        Cancelled, it rolls back as the statement-by-statement form did: the body runs to its end
        on the thread (it cannot be interrupted there), then the transaction is rolled back instead
        of committed, and only then does ``CancelledError`` reach the caller. If the thread had
        already committed when the cancel arrived, the result is returned and the cancel is
        delivered again at the caller's next ``await``: a caller never gets ``CancelledError``
        for a change that was made without knowing about it. (A quick body run on the loop's
        thread cannot be cancelled half-way: nothing in it awaits.)
        """
        progress = _Progress()

        def whole(conn: sqlite3.Connection) -> T:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _unavailable(self.path, exc) from None
            progress.started = True
            if progress.abandoned:
                _rollback(conn)
                raise _Abandoned()
            result = self._body_then_commit(conn, body, progress)
            progress.result, progress.committed = result, True
            return result

        async with self._lock:
            self._check_file()
            if quick and self.quick_on_loop and not self._closed and self._thread.idle and self._begin_at_once():
                on_loop = _ON_LOOP.set(True)
                try:
                    result = self._body_then_commit(self._conn, body, progress)
                except _NotQuick:
                    pass  # rolled back: it goes to the database thread below
                else:
                    self._committed()
                    return result
                finally:
                    _ON_LOOP.reset(on_loop)
            try:
                result = await self._hop(whole, self._conn)
            except asyncio.CancelledError as cancelled:
                progress.abandoned = True
                # Not yet past BEGIN: it will roll back on its own (or never run). Past it, the body
                # is a few statements under our write lock; wait them out (a cancel scope may cancel
                # each wait again) to learn whether it committed: a no-op queued now runs after it.
                if progress.started:
                    over = self._thread.call(_nothing)
                    while not over.done():
                        with contextlib.suppress(asyncio.CancelledError):
                            await asyncio.shield(over)
                if not progress.committed:
                    raise  # rolled back, or never started
                self._committed()
                redeliver(cancelled)  # committed before the cancel was seen: deliver it at the next await
                return progress.result
            self._committed()
            return result

    def _body_then_commit(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T],
                          progress: "_Progress") -> T:
        """Inside ``BEGIN IMMEDIATE``: the body, then ``COMMIT``; ``ROLLBACK`` if either fails or the
        caller gave up meanwhile. Runs on whichever thread holds the connection."""
        try:
            result = body(conn)
            if progress.abandoned:
                raise _Abandoned()
        except sqlite3.OperationalError as exc:  # disk full, read-only, I/O error: said plainly
            _rollback(conn)
            raise _unavailable(self.path, exc) from None
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _unavailable(self.path, exc) from None
        return result

    def _begin_at_once(self) -> bool:
        """On the event loop's thread: ``BEGIN IMMEDIATE`` if the write lock is free now (True), or
        nothing (False) if another process holds it — without waiting, since waiting here would
        stop every task of this process. The busy timeout is 0 for this one statement."""
        conn = self._conn
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False  # the database thread will wait for it
            raise _unavailable(self.path, exc) from None
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from None
        finally:
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        return True

    def _committed(self) -> None:
        """Count a committed write; every ``CHECKPOINT_EVERY`` of them, queue a passive checkpoint
        of the WAL on the database thread. SQLite's own automatic checkpoint is off on this
        connection because it runs inside whichever ``COMMIT`` crosses its threshold, and a quick
        one commits on the event loop's thread: copying a thousand pages and two fsyncs there would
        stop every task. Queued behind nothing, it runs before any call asked for after it."""
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and not self._closed:
            self._thread.call(_checkpoint, self._conn).add_done_callback(_checkpoint_done)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception rolls back. One at a time per process.
        Each statement is a hop to the database thread: prefer ``run`` for new code."""
        async with self._lock:
            self._check_file()
            begin = asyncio.ensure_future(self._hop(self._conn.execute, "BEGIN IMMEDIATE"))
            try:
                await asyncio.shield(begin)
            except asyncio.CancelledError:
                # The thread runs the BEGIN whatever happens to this task; once it lands, roll it
                # back, or this connection would keep the write lock for every process.
                await asyncio.shield(self._roll_back_after(begin))
                raise
            except sqlite3.Error as exc:
                raise _unavailable(self.path, exc) from None
            try:
                yield Transaction(self)
            except sqlite3.OperationalError as exc:  # disk full, read-only, I/O error: said plainly
                await self._rollback()
                raise _unavailable(self.path, exc) from None
            except BaseException:
                await self._rollback()
                raise
            try:
                await self._hop(self._conn.execute, "COMMIT")
            except sqlite3.Error as exc:
                await self._rollback()
                raise _unavailable(self.path, exc) from None

    async def _roll_back_after(self, begin: asyncio.Future[Any]) -> None:
        try:
            await begin
        except sqlite3.Error:
            return  # it never started: nothing to undo
        await self._rollback()

    async def read(self, body: Callable[[sqlite3.Connection], T], *, snapshot: bool = False) -> T:
        """Run a synchronous read ``body(conn)`` in one hop (no write lock taken).

        Each statement of a plain read sees the database as it is when that statement starts, so
        two of them may straddle another process's commit. ``snapshot`` runs the body in one read
        transaction (``BEGIN`` … ``ROLLBACK``: it writes nothing), so every statement sees the
        same committed state — for a body whose reads must agree with each other (the books
        check) — while writers go on (WAL)."""
        async with self._lock:
            self._check_file()
            try:
                return await self._hop(_in_snapshot if snapshot else _plain, self._conn, body)
            except sqlite3.OperationalError as exc:
                raise _unavailable(self.path, exc) from None

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self.read(lambda conn: conn.execute(sql, args).fetchone())

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self.read(lambda conn: conn.execute(sql, args).fetchall())

    async def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, args)
        return None if row is None else row[0]


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the database file, or None once it is gone."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves; the connection lives on one thread,
    # but is made there by the executor, so the same-thread check must be off.
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def _configure(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # ours run on the database thread: Database._committed


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy what the WAL holds into the database file, as far as no reader needs it (``PASSIVE``:
    it takes no lock that would make a writer of another process wait)."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _checkpoint_done(future: "asyncio.Future[None]") -> None:
    """Nobody awaits a checkpoint; one that failed (a full disk, say) is logged, and the next
    write reports the problem to its caller."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("WAL checkpoint failed: %s", exc)


def _plain(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    return body(conn)


def _in_snapshot(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """``body(conn)`` in one read transaction: its first read fixes the snapshot all of them see."""
    conn.execute("BEGIN")
    try:
        return body(conn)
    finally:
        _rollback(conn)


def _rollback(conn: sqlite3.Connection) -> None:
    """ROLLBACK, unless SQLite already ended the transaction itself (it does on a full disk)."""
    try:
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "no transaction is active" not in str(exc):
            raise
def lock_keys(conn: Any, keys: Iterable[str]) -> None:
    """Inside a transaction body: make transactions that read and then write what depends on
    ``keys`` (a reservation reads its scopes' totals, then adds a hold) take turns. SQLite's
    ``BEGIN IMMEDIATE`` already serialises every writer, so there is nothing to do; a PostgreSQL
    transaction takes its advisory locks here (``postgres.Connection.lock_keys``). Call it
    first in the body, before anything it protects is read."""
    lock = getattr(conn, "lock_keys", None)
    if lock is not None:
        lock(list(keys))


def claim_leases(conn: Any, table: str, key: str, where: str, args: Sequence[Any], *, owner: str, now: float,
                 until: float, renew: bool = True) -> list[Any]:
    """Inside a transaction body: make ``owner`` the lease holder, until ``until``, of the rows of
    ``table`` that match ``where`` and are free — no owner, or the owner's lease lapsed before
    ``now`` — and (``renew``) of those it holds already; the ``key`` of each row it now holds.

    Of several processes claiming one row, exactly one gets it. A lease is the ``owner`` and
    ``lease_until`` columns (jobs, Discord deliveries). On SQLite this is one conditional UPDATE:
    ``BEGIN IMMEDIATE`` lets one writer in at a time, so claimers take turns. On PostgreSQL a
    claimer skips a row another transaction is claiming (``FOR UPDATE SKIP LOCKED``), so claimers
    never queue behind each other (``postgres.Connection.claim_leases``).
    """
    special = getattr(conn, "claim_leases", None)
    if special is not None:
        return special(table, key, where, args, owner=owner, now=now, until=until, renew=renew)
    mine = " OR owner = ?" if renew else ""
    return [row[0] for row in conn.execute(
        f"UPDATE {table} SET owner = ?, lease_until = ? WHERE ({where}) AND (owner IS NULL OR lease_until < ?{mine})"
        f" RETURNING {key}", (owner, until, *args, now, *((owner,) if renew else ()))).fetchall()]


JOBS_CHANNEL = "videogen_jobs"
"""Where a job's id is announced when another process should look at it now (a cancel)."""


async def nudge(db: Any, channel: str, payload: str) -> None:
    """Tell the processes listening on ``channel`` to look at ``payload`` now. PostgreSQL's
    ``NOTIFY`` reaches them within milliseconds (``postgres.PostgresDatabase.nudge``); SQLite has
    no such signal, so they notice at their next poll, as they always did."""
    send = getattr(db, "nudge", None)
    if send is not None:
        await send(channel, payload)


def listener(db: Any, channel: str) -> Any:
    """An async iterator of the payloads nudged on ``channel`` by any process, or None where the
    database cannot tell (SQLite: callers keep polling)."""
    listen = getattr(db, "listen", None)
    return None if listen is None else listen(channel)


def statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would COMMIT our transaction); a
    trigger's ``BEGIN … ; … END`` stays whole because SQLite itself says when a statement is done."""
    result, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                result.append(buffer.strip())
            buffer = ""
    return result


def placeholders(values: Iterable[Any]) -> str:
    return ",".join("?" for _ in values)
