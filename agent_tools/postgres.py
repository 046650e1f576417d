"""PostgreSQL behind the same interface as the SQLite ``Database``: the shared store of several
processes on several machines (``VIDEOGEN_DB=postgresql://…``).

Every difference between the two engines lives here, so the ledger, the job engine and the bot
write one SQL (SQLite's, with ``?`` placeholders) and never ask which engine runs it:

- **Statements** are rewritten once per distinct text (``to_postgres``): ``?`` → ``%s``, a literal
  ``%`` → ``%%``, ``group_concat`` → ``string_agg``.
- **Migrations** are db.py's one numbered list, its DDL translated (``migration_statements``):
  ``INTEGER`` → ``BIGINT`` (micro-dollars, seeds and Discord ids pass 2³¹), ``REAL`` → ``DOUBLE
  PRECISION`` (a 4-byte ``real`` would round timestamps to minutes), ``AUTOINCREMENT`` → an identity
  column, and SQLite's ``RAISE(ABORT, …)`` triggers → a plpgsql trigger function, so the audit stays
  append-only by the database's own rule. The version is kept in ``schema_version``; two processes
  starting together migrate one after the other (an advisory lock).
- **Results**: ``SUM`` of a ``BIGINT`` is ``numeric`` on PostgreSQL; whole numbers come back as
  ``int`` as on SQLite. Rows answer by index and by column name, like ``sqlite3.Row``.
- **Isolation and locking**: every connection is pinned to READ COMMITTED, where a conditional
  ``UPDATE … WHERE state = …`` that waited for another writer re-checks its condition against the
  committed row (so a job or a hold changes state once). SQLite's ``BEGIN IMMEDIATE`` serialises all
  writers; here a read-then-write such as a reservation first takes transaction-scoped advisory
  locks on the keys it depends on (``lock_keys``), in sorted order so two writers never deadlock,
  released at commit — safe behind PgBouncer's transaction pooling, unlike session locks. A claim
  of a job's or a delivery's lease (``claim_leases``) locks the free rows ``FOR UPDATE SKIP
  LOCKED``, so processes claiming the same rows pass over each other's instead of queueing.
- **Round trips**: a transaction body (``run``) runs in pipeline mode — statements are queued and
  their results fetched only when the body reads one, so the writes it never reads back (an audit
  row, a totals update) go out with the next read or with the ``COMMIT``; statements a connection
  repeats are prepared on the server (``PREPARE_THRESHOLD``). A reserve + settle pair went from 25
  round trips to 8 (a reserve 5, a settle 3).

psycopg 3 with psycopg-pool is the driver: it speaks both sync and async, its ``%s`` parameters are
a plain rewrite of ``?``, and it has ``COPY`` for ``videogen db copy`` and ``notifies()`` for
LISTEN/NOTIFY. It is an optional extra; without it the one message says how to install it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .config import redact_database_url
from .db import MIGRATIONS, DatabaseUnavailable, made_by_a_newer_version, redeliver, statements

INSTALL = "pip install 'videogen[postgres]'"
POOL_SIZE = 10
POOL_WAIT_SECONDS = 120.0
"""How long a transaction waits for a free pooled connection: a burst of jobs queues, not fails."""
PREPARE_THRESHOLD = 2
"""A statement a connection has run this many times is prepared on the server (parsed and planned
once, then only bound and executed): the ledger's few statements run thousands of times, and
preparing them cut the server's CPU per reserve + settle by about 40 % (BENCHMARKS.md)."""
CONNECT_TIMEOUT_SECONDS = 10
MIGRATION_LOCK = "videogen:migrations"
T = TypeVar("T")


def require_driver() -> Any:
    """The psycopg module, or the one clear message that says how to install it."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401  (the pool is part of the extra)
    except ImportError:
        raise DatabaseUnavailable(
            "The database setting names a PostgreSQL server, but the PostgreSQL driver is not installed. "
            f"Install it with: {INSTALL}  (psycopg 3 and psycopg-pool), then start again.") from None
    return psycopg


# -- statements ------------------------------------------------------------------------------

_LITERAL_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?|%|\bgroup_concat\s*\(", re.IGNORECASE)


@lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """One SQLite statement in PostgreSQL's words (placeholders and the few spellings that differ)."""
    def swap(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("'"):
            return text.replace("%", "%%")  # psycopg reads % inside literals too
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        return "string_agg("
    pg = _LITERAL_OR_MARK.sub(swap, sql)
    # SQLite's CAST(x AS INTEGER) truncates where PostgreSQL's rounds; SQLite's two-argument MIN
    # of a number is PostgreSQL's LEAST (spend-by-day numbers days this way)
    pg = _INT_CAST.sub(r"TRUNC(\1)::bigint", pg)
    return pg.replace("MIN(TRUNC(", "LEAST(TRUNC(")


_INT_CAST = re.compile(r"CAST\((.+?) AS INTEGER\)", re.IGNORECASE)


_TRIGGER = re.compile(r"CREATE\s+TRIGGER\s+(\w+)\s+BEFORE\s+(UPDATE|DELETE|INSERT)\s+ON\s+(\w+)\s+BEGIN\s+"
                      r"SELECT\s+RAISE\s*\(\s*ABORT\s*,\s*'((?:[^']|'')*)'\s*\)\s*;\s*END\s*;?\s*$",
                      re.IGNORECASE | re.DOTALL)


def translate_ddl(statement: str) -> list[str]:
    """One SQLite migration statement as the PostgreSQL statements that do the same."""
    trigger = _TRIGGER.match(statement.strip())
    if trigger:
        name, event, table, message = trigger.groups()
        return [f"CREATE OR REPLACE FUNCTION {name}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN RAISE EXCEPTION '{message}'; END $$",
                f"CREATE TRIGGER {name} BEFORE {event.upper()} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}_refuse()"]
    if re.match(r"\s*CREATE\s+TRIGGER", statement, re.IGNORECASE):
        raise ValueError(f"no PostgreSQL form for this trigger; give the migration one: {statement[:80]}")
    ddl = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                 statement, flags=re.IGNORECASE)
    ddl = re.sub(r"\bINTEGER\b", "BIGINT", ddl, flags=re.IGNORECASE)
    ddl = re.sub(r"\bREAL\b", "DOUBLE PRECISION", ddl, flags=re.IGNORECASE)
    return [ddl.rstrip().rstrip(";")]


def migration_statements(number: int) -> list[str]:
    """Migration ``number`` (1-based) of db.py's list, as PostgreSQL statements."""
    return [pg for statement in statements(MIGRATIONS[number - 1]) for pg in translate_ddl(statement)]


# -- rows ------------------------------------------------------------------------------------

class Row(Sequence[Any]):
    """A result row that answers by index and by column name, like ``sqlite3.Row``."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (Row, tuple)) else other)

    def __repr__(self) -> str:
        return f"Row{self._values!r}"

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    index = {column.name: i for i, column in enumerate(description)}
    return lambda values: Row(values, index)


def _plain(value: Decimal) -> int | Decimal:
    return int(value) if value == value.to_integral_value() else value


@lru_cache(maxsize=1)
def _numeric_loaders() -> tuple[type, type]:
    from psycopg.types.numeric import NumericBinaryLoader, NumericLoader

    class Text(NumericLoader):
        def load(self, data: Any) -> Any:
            return _plain(super().load(data))

    class Binary(NumericBinaryLoader):
        def load(self, data: Any) -> Any:
            return _plain(super().load(data))

    return Text, Binary


def _whole_numbers(conn: Any) -> None:
    """``SUM`` of integers arrives as ``numeric``; give whole numbers back as ``int``, as SQLite does."""
    for loader in _numeric_loaders():
        conn.adapters.register_loader("numeric", loader)


# -- the database ----------------------------------------------------------------------------

class Cursor:
    """What a statement returns, like ``sqlite3.Cursor``: ``rowcount`` and its rows.

    Inside a transaction body (``run``) the connection is in pipeline mode: a statement is queued,
    not waited for, and its result is fetched only when the body asks for it (a row, or the
    ``rowcount`` of a conditional ``UPDATE``) — so the writes a body never reads back travel
    together with the next read or with the ``COMMIT``, in one round trip. An error in a queued
    statement is raised at that next read or at the commit, and rolls the whole body back."""

    def __init__(self, cursor: Any, pipeline: Any = None) -> None:
        self._cursor = cursor
        self._pipeline = pipeline
        self._rows: list[Row] | None = None
        self._rowcount = -1
        self.lastrowid = None

    def _result(self) -> list[Row]:
        if self._rows is None:
            cursor = self._cursor
            if cursor.pgresult is None and self._pipeline is not None:
                self._pipeline.sync()  # send what is queued, receive every result up to here
            self._rows = list(cursor.fetchall()) if cursor.description is not None else []
            self._rowcount = cursor.rowcount
            self._cursor = self._pipeline = None
        return self._rows

    @property
    def rowcount(self) -> int:
        self._result()
        return self._rowcount

    def fetchone(self) -> Row | None:
        rows = self._result()
        return rows.pop(0) if rows else None

    def fetchall(self) -> list[Row]:
        rows = self._result()
        self._rows = []
        return rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class Connection:
    """A pooled psycopg connection as a transaction body sees it: ``execute`` and ``executemany``
    with SQLite's statements (rewritten), and the advisory locks of ``db.lock_keys``."""

    def __init__(self, conn: Any, pipeline: Any = None) -> None:
        self._conn = conn
        self._pipeline = pipeline

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        cursor = self._conn.cursor(row_factory=_row_factory)  # not closed here: a pipelined result comes later
        cursor.execute(to_postgres(sql), tuple(args))
        return Cursor(cursor, self._pipeline)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(to_postgres(sql), [tuple(r) for r in rows])

    def lock_keys(self, keys: Sequence[str]) -> None:
        """Wait for, then hold until commit, an advisory lock on each key — in sorted order, so two
        transactions asking for overlapping keys queue instead of deadlocking."""
        for key in sorted(set(keys)):
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def claim_leases(self, table: str, key: str, where: str, args: Sequence[Any], *, owner: str, now: float,
                     until: float, renew: bool = True) -> list[Any]:
        """``db.claim_leases`` on PostgreSQL. Free rows are locked with ``FOR UPDATE SKIP LOCKED``: a
        row another transaction is claiming (or writing) right now is passed over, not waited for
        — that one wins or is left free for a later try — and a row locked here is re-checked
        against its newest committed version, so one another process just took is not taken
        again. Rows this owner holds already are renewed by a plain conditional UPDATE instead,
        which waits for the owner's own transactions on them (a renewal under way) rather than
        skipping a row it owns."""
        held: list[Any] = []
        if renew:
            held = [r[0] for r in self.execute(f"UPDATE {table} SET lease_until = ? WHERE ({where}) AND owner = ?"
                                               f" RETURNING {key}", (until, *args, owner)).fetchall()]
        taken = [r[0] for r in self.execute(
            f"UPDATE {table} SET owner = ?, lease_until = ? WHERE {key} IN (SELECT {key} FROM {table} WHERE ({where})"
            f" AND (owner IS NULL OR lease_until < ?) FOR UPDATE SKIP LOCKED) RETURNING {key}",
            (owner, until, *args, now)).fetchall()]
        return held + taken  # apart: a row renewed above is no longer lapsed

    def columns(self, table: str) -> list[str]:
        """The columns of one of this schema's tables, in their order."""
        return [r[0] for r in self.execute("SELECT column_name FROM information_schema.columns WHERE table_schema ="
                                           " current_schema() AND table_name = ? ORDER BY ordinal_position",
                                           (table,)).fetchall()]

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY table (columns) FROM STDIN``: the bulk load ``videogen db copy`` uses (it writes
        explicit values into identity columns too; ``reset_identities`` then moves them on)."""
        with self._conn.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row))

    def reset_identities(self) -> None:
        """Move every identity column's sequence past the highest id in its table, so the next
        row inserted after a bulk load does not collide with a loaded one."""
        for table, column in self.execute("SELECT table_name, column_name FROM information_schema.columns"
                                          " WHERE table_schema = current_schema() AND is_identity = 'YES'").fetchall():
            self._conn.execute(f"SELECT setval(pg_get_serial_sequence(%s, %s),"
                               f" COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)", (table, column))


class Transaction:
    """An open transaction (from ``transaction()``), the statement-by-statement form: each call is
    one hop to a database thread, like SQLite's ``db.Transaction``; ``run`` is one hop for a body."""

    def __init__(self, db: "PostgresDatabase", conn: Connection) -> None:
        self._db = db
        self._conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> "AsyncCursor":
        return AsyncCursor(await self._db._hop(self._conn.execute, sql, args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db._hop(self._conn.executemany, sql, list(rows))

    async def run(self, body: Callable[[Any], T]) -> T:
        return await self._db._hop(body, self._conn)


class AsyncCursor:
    """``Transaction.execute``'s result: awaitable ``fetchone``/``fetchall``, as SQLite's."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid = None

    async def fetchone(self) -> Row | None:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Row]:
        return self._cursor.fetchall()


class _Abandoned(Exception):
    """The caller was cancelled before the body committed: it is rolled back."""


class PostgresDatabase:
    """A process's pool of connections to the shared PostgreSQL database, used from threads of its
    own: a transaction body (``run``) runs on one of them in one hop, like SQLite's."""

    dialect = "postgres"

    def __init__(self, url: str, pool: Any, threads: ThreadPoolExecutor, *, synchronous_commit: bool = True) -> None:
        self.url = url
        self.path = redact_database_url(url)  # what messages may show: never the password
        self._pool = pool
        self._threads = threads
        self._synchronous_commit = synchronous_commit

    @classmethod
    async def open(cls, url: str, *, pool_size: int = POOL_SIZE, prepared_statements: bool = True,
                   synchronous_commit: bool = True) -> "PostgresDatabase":
        """A pool on the server at ``url``, migrated. ``prepared_statements=False`` for a pooler
        that cannot keep them (PgBouncer in transaction mode before 1.21, or without
        ``max_prepared_statements``); ``synchronous_commit=False`` lets a commit return before its
        WAL reaches disk (each write transaction says ``SET LOCAL synchronous_commit TO off``): an
        operator's choice, see ``StorageSettings.postgres_synchronous_commit``."""
        psycopg = require_driver()
        from psycopg_pool import ConnectionPool

        shown = redact_database_url(url)
        threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="videogen-pg")
        loop = asyncio.get_running_loop()

        def start() -> Any:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                _configure(conn)
                migrate(conn)
            pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, configure=_configure,
                                  timeout=POOL_WAIT_SECONDS,
                                  kwargs={"autocommit": True,
                                          "prepare_threshold": PREPARE_THRESHOLD if prepared_statements else None,
                                          "connect_timeout": CONNECT_TIMEOUT_SECONDS})
            pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
            return pool

        try:
            pool = await loop.run_in_executor(threads, start)
        except psycopg.Error as exc:
            threads.shutdown(wait=False)
            raise _unavailable(shown, exc) from None
        except BaseException:
            threads.shutdown(wait=False)
            raise
        return cls(url, pool, threads, synchronous_commit=synchronous_commit)

    async def _hop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    async def close(self) -> None:
        try:
            await self._hop(self._pool.close)
        finally:
            self._threads.shutdown(wait=False)

    async def __aenter__(self) -> "PostgresDatabase":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, body: Callable[[Any], T], *, quick: bool = False) -> T:
        """One transaction in one hop: BEGIN, ``body(conn)``, COMMIT on a pooled connection (READ
        COMMITTED) — ROLLBACK if the body raises. ``quick`` changes nothing here (SQLite runs such a
        body on the event loop's thread; here every statement is a round trip to the server, which
        must not stop the loop). A connection lost on the way is
        ``DatabaseUnavailable``; nothing is retried, because only the caller knows whether its work
        may run twice. Cancelled, the body still finishes on its thread (it cannot be interrupted
        there); the caller gets its result if it committed, and the cancel at its next await."""
        import psycopg

        abandoned = threading.Event()

        def whole() -> T:
            try:
                with self._pool.connection() as conn, conn.pipeline() as pipeline, conn.transaction():
                    self._commit_mode(conn)
                    result = body(Connection(conn, pipeline))
                    if abandoned.is_set():
                        raise _Abandoned()  # the caller gave up before the commit: roll back
                    return result
            except psycopg.OperationalError as exc:
                raise _unavailable(self.path, exc) from None

        done = asyncio.ensure_future(self._hop(whole))
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError as cancelled:
            abandoned.set()
            while not done.done():  # the body finishes on its thread; learn whether it committed
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({done})
            if done.cancelled() or done.exception() is not None:
                raise
            redeliver(cancelled)  # committed before the cancel was seen: deliver it at the next await
            return done.result()

    def _commit_mode(self, conn: Any) -> None:
        """In a write transaction: the operator's ``synchronous_commit`` for this transaction only
        (``SET LOCAL``, so nothing lingers on a connection a pooler hands to someone else)."""
        if not self._synchronous_commit:
            conn.execute("SET LOCAL synchronous_commit TO off")

    async def read(self, body: Callable[[Any], T], *, snapshot: bool = False) -> T:
        """A read body in one hop, on a pooled connection outside any transaction; once more on a
        fresh connection if the server dropped the first (a restart, an idle timeout).
        ``snapshot``: in one ``REPEATABLE READ, READ ONLY`` transaction, so every statement sees
        the state of the first one's start (as SQLite's ``read(snapshot=True)``) — outside one,
        each statement sees what was committed when it began."""
        import psycopg

        def once() -> T:
            for attempt in (1, 2):
                conn = None
                try:
                    with self._pool.connection() as conn:
                        if not snapshot:
                            return body(Connection(conn))
                        with conn.transaction():
                            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                            return body(Connection(conn))
                except psycopg.OperationalError as exc:
                    if attempt == 2 or conn is None or not conn.closed:  # None: no connection came free
                        raise _unavailable(self.path, exc) from None
            raise AssertionError("unreachable")

        return await self._hop(once)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN … COMMIT on one pooled connection held for the block; any exception rolls back.
        Each statement is a hop: prefer ``run`` for new code."""
        import psycopg

        try:
            holder = self._pool.connection()
            conn = await self._hop(holder.__enter__)
            try:
                block = conn.transaction()
                await self._hop(block.__enter__)
                if not self._synchronous_commit:
                    await self._hop(self._commit_mode, conn)
                try:
                    yield Transaction(self, Connection(conn))
                except BaseException as exc:
                    await asyncio.shield(self._hop(block.__exit__, type(exc), exc, exc.__traceback__))
                    raise
                await self._hop(block.__exit__, None, None, None)
            except BaseException as exc:
                await asyncio.shield(self._hop(holder.__exit__, type(exc), exc, exc.__traceback__))
                raise
            await self._hop(holder.__exit__, None, None, None)
        except psycopg.OperationalError as exc:
            raise _unavailable(self.path, exc) from None

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        return await self.read(lambda conn: conn.execute(sql, args).fetchone())

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return await self.read(lambda conn: conn.execute(sql, args).fetchall())

    async def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, args)
        return None if row is None else row[0]

    async def nudge(self, channel: str, payload: str) -> None:
        """``NOTIFY``: every process listening on ``channel`` hears ``payload`` (at once: autocommit)."""
        await self.read(lambda conn: conn.execute("SELECT pg_notify(?, ?)", (channel, payload)))

    async def listen(self, channel: str) -> AsyncIterator[str | None]:
        """``None`` once listening, then the payloads nudged on ``channel``, on a connection of its
        own outside the pool (LISTEN holds the session, so it needs a direct or session-pooled
        connection, not PgBouncer's transaction pooling). Notifications sent while nobody listens
        are lost: a nudge only hurries what polling would do anyway."""
        psycopg = require_driver()
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True,
                                                         connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            await conn.execute(f"LISTEN {channel}")
            yield None
            async for note in conn.notifies():
                yield note.payload

    async def version(self) -> int:
        return int(await self.scalar("SELECT version FROM schema_version"))


def _configure(conn: Any) -> None:
    from psycopg import IsolationLevel

    _whole_numbers(conn)
    conn.isolation_level = IsolationLevel.READ_COMMITTED


def migrate(conn: Any) -> int:
    """Run the migrations this database has not had yet, all in one transaction; the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version(version) VALUES (0)")
        version = 0 if row is None else row[0]
        if version > len(MIGRATIONS):
            raise made_by_a_newer_version(version)
        for number in range(version + 1, len(MIGRATIONS) + 1):
            for statement in migration_statements(number):
                conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = %s", (len(MIGRATIONS),))
    return len(MIGRATIONS)


def _unavailable(shown: str, exc: BaseException) -> DatabaseUnavailable:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "couldn't get a connection" in text:
        hint = (f"all {POOL_SIZE} pooled connections stayed busy for {POOL_WAIT_SECONDS:.0f} s; the server is "
                "overloaded or a transaction is stuck (look at pg_stat_activity)")
    elif "password" in text or "authentication" in text:
        hint = "check the user and password in the URL (or the server's pg_hba.conf)"
    elif "does not exist" in text and "database" in text:
        hint = "create the database first (createdb NAME), or name an existing one in the URL"
    elif "connect" in text or "timeout" in text.lower() or "refused" in text:
        hint = "check that the server runs and the host and port in the URL are right"
    else:
        hint = "check the server and the URL"
    return DatabaseUnavailable(f"The database {shown} cannot be used ({text}): {hint}.")
