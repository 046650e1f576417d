"""Move a deployment from its SQLite file to PostgreSQL: ``videogen db copy --to postgresql://…``.

The copy reads the SQLite file read-only (it is never written, so going back is pointing the
setting at the file again), refuses while a job is unfinished or a hold is open (money in flight
would be split between two stores; ``--force`` copies anyway), and refuses a target that already
holds data (a copy never merges two ledgers). It creates the schema on the target, then copies
every table, parents first, with ``COPY … FROM STDIN`` inside one PostgreSQL transaction — all or
nothing — and moves the identity sequences past the copied ids (else the next audit row would
collide with a copied one). Then it verifies: every table's rows, compared one by one on both
sides, and the ledger's books (``Ledger.books`` and ``check_books``) on the target.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings, is_database_url, redact_database_url
from .db import MIGRATIONS
from .errors import UserError
from .jobs import UNFINISHED
from .ledger import OPEN_STATES, Ledger

DATA_TABLES = ("accounts", "jobs", "holds", "audit", "tokens")
"""A target with a row in any of these already has a deployment's data: the copy refuses it."""


@dataclass(frozen=True)
class TableCopy:
    name: str
    source_rows: int
    target_rows: int
    same: bool  # every row equal, compared by primary key order


@dataclass
class CopyReport:
    source: str
    target: str
    tables: list[TableCopy] = field(default_factory=list)
    books_source: dict[str, int] = field(default_factory=dict)
    books_target: dict[str, int] = field(default_factory=dict)
    differences: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (all(t.same and t.source_rows == t.target_rows for t in self.tables)
                and self.books_source == self.books_target and not self.differences)


async def copy_database(source: Path | str, target: str, settings: Settings, *, force: bool = False) -> CopyReport:
    """Copy the SQLite database ``source`` into the PostgreSQL database ``target`` and verify it."""
    from .db import Database
    from .postgres import PostgresDatabase, require_driver  # the driver is needed only here

    psycopg = require_driver()

    if is_database_url(source):
        raise UserError("The database to copy from must be a SQLite file; the setting names a PostgreSQL server. "
                        "Pass --from PATH, or set VIDEOGEN_DB to the SQLite file.")
    if not is_database_url(target):
        raise UserError(f"--to takes a postgresql:// URL, not '{target}'.")
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserError(f"There is no SQLite database at {path}; pass --from PATH.")
    with contextlib.closing(_read_only(path)) as lite:
        version = lite.execute("PRAGMA user_version").fetchone()[0]
        if version != len(MIGRATIONS):
            raise UserError(f"{path} is at schema version {version}, this videogen at {len(MIGRATIONS)}: start videogen "
                            "once on it (any command) so it is brought up to date, then copy.")
        _refuse_work_in_flight(lite, force)
        tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        async with await PostgresDatabase.open(target) as pg:
            await _refuse_a_used_target(pg, target)
            current = ""
            try:
                async with pg.transaction() as tx:  # all or nothing
                    for current in tables:
                        columns = await _shared_columns(lite, tx, current)
                        rows = lite.execute(f"SELECT {', '.join(columns)} FROM {current}").fetchall()
                        await tx.run(lambda conn, t=current, c=columns, r=rows: conn.copy_rows(t, c, r))
                    await tx.run(lambda conn: conn.reset_identities())
            except psycopg.DatabaseError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UserError(f"Copying table {current} failed ({first}); nothing was written to the target. "
                                "Fix the row it names in the SQLite file (or report it), then copy again.") from None
            report = CopyReport(str(path), redact_database_url(target))
            for table in tables:
                report.tables.append(await _compare(lite, pg, table))
            report.books_target = await Ledger(pg, settings).books()
            report.differences = (await Ledger(pg, settings).check_books()).differences
    async with await Database.open(path) as again:  # the same books, read through the same code
        report.books_source = await Ledger(again, settings).books()
    return report


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _refuse_work_in_flight(lite: sqlite3.Connection, force: bool) -> None:
    states = [s.value for s in UNFINISHED]
    jobs = lite.execute(f"SELECT COUNT(*) FROM jobs WHERE state IN ({', '.join('?' * len(states))})",
                        states).fetchone()[0]
    holds = lite.execute(f"SELECT COUNT(*) FROM holds WHERE state IN ({', '.join('?' * len(OPEN_STATES))})",
                         OPEN_STATES).fetchone()[0]
    if (jobs or holds) and not force:
        raise UserError(f"{jobs} job(s) are unfinished and {holds} hold(s) open: stop every videogen process and let "
                        "them finish (`videogen jobs list`, `videogen holds`), then copy. --force copies them as "
                        "they are; only one store may then follow them.")


async def _refuse_a_used_target(pg: Any, target: str) -> None:
    used = [t for t in DATA_TABLES if await pg.scalar(f"SELECT COUNT(*) FROM {t}")]
    if used:
        raise UserError(f"{redact_database_url(target)} already has data (in {', '.join(used)}): a copy never merges "
                        "two ledgers. Name an empty database (createdb NAME) or drop this one first.")


async def _shared_columns(lite: sqlite3.Connection, tx: Any, table: str) -> list[str]:
    mine = [c[1] for c in lite.execute(f"PRAGMA table_info({table})")]
    theirs = set(await tx.run(lambda conn: conn.columns(table)))
    missing = [c for c in mine if c not in theirs]
    if missing:
        raise UserError(f"The target's table {table} lacks column(s) {', '.join(missing)}; is it another program's?")
    return mine


async def _compare(lite: sqlite3.Connection, pg: Any, table: str) -> TableCopy:
    """Every row on both sides, in one order (all columns), compared value by value."""
    columns = [c[1] for c in lite.execute(f"PRAGMA table_info({table})")]
    order = ", ".join(columns)
    here = [tuple(r) for r in lite.execute(f"SELECT {order} FROM {table} ORDER BY {order}")]
    there = [tuple(r) for r in await pg.fetchall(f"SELECT {order} FROM {table} ORDER BY {order}")]
    if len(here) == len(there) and here != there:  # text sorts by collation on PostgreSQL: compare as sets
        same = sorted(here, key=repr) == sorted(there, key=repr)
    else:
        same = here == there
    return TableCopy(table, len(here), len(there), same)
