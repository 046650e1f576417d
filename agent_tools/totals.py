"""Running spend totals per (scope, scope id, period), so a reservation reads a few rows.

Summing a month of holds inside every reservation made a reserve's cost grow with history (57 ms
with 100,000 holds this month, while it held the write lock). Instead the ledger keeps, for each
scope a hold counts in — its account, its guild, the global scope — one row per calendar day,
one per calendar month (in the configured time zone) and one for all time, each with

- ``charge_micros``: what the holds created in that period count against a cap (settled → the
  actual cost, open → the estimate, released → 0), the same rule as ``ledger.CHARGE``;
- ``holds``: how many holds were created in it; ``open_holds``: how many of them are still open.

Every reserve, settle and release adds its change to these rows in the same transaction as the
hold itself, so the totals are always exactly what the holds say; ``expected`` recomputes them
from the holds for ``videogen books check`` and for ``rebuild`` (the migration of a database
that has holds but no totals, or whose totals were kept in another time zone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite3

from .db import lock_keys, not_quick_from_here

ALL = "all"
TIMEZONE_KEY = "totals_timezone"
TOKEN_PREFIX = "llm:"
"""Holds whose tool starts with this are a chat agent's token charges (``llm:<model>``): they
count against the spend caps like any hold, but they are not jobs, so they count neither as a
job running at once (``open_holds``) nor as a job started in the last hour."""


def is_job(tool: str) -> bool:
    """Whether a hold for ``tool`` is a job (a generation), not a token charge."""
    return not tool.startswith(TOKEN_PREFIX)


@dataclass(frozen=True)
class Total:
    charge_micros: int = 0
    holds: int = 0
    open_holds: int = 0

    def __add__(self, other: "Total") -> "Total":
        return Total(self.charge_micros + other.charge_micros, self.holds + other.holds,
                     self.open_holds + other.open_holds)

    @property
    def zero(self) -> bool:
        return self == Total()


Key = tuple[str, str, str]  # (scope, scope_id, period)


def periods(created_at: float, tz: ZoneInfo) -> tuple[str, str]:
    """The day and month a hold created at ``created_at`` belongs to, in ``tz``."""
    local = datetime.fromtimestamp(created_at, tz)
    return f"day:{local.date().isoformat()}", f"month:{local.year:04d}-{local.month:02d}"


def scopes_of(account: str, guild_id: str | None) -> list[tuple[str, str]]:
    """Every scope a hold counts in (a guild only when the hold was made in one)."""
    return [("account", account), *([("guild", guild_id)] if guild_id else []), ("global", "")]


def lock(conn: Any, scopes: Iterable[tuple[str, str]]) -> None:
    """Take turns with every other transaction that checks these scopes' totals against a limit
    (a no-op on SQLite, whose writers already take turns; advisory locks on PostgreSQL, held to
    commit). Before the body reads a total it checks. Only a check needs it: a change that checks
    nothing (a settle, a release, a reconciliation) adds to the totals in one atomic ``UPDATE``, so
    whichever order it lands in, the totals stay exact and no check ever saw less than was there.

    The order is always the sorted order of the keys (account, then global, then guild), also
    across calls in one transaction, so two transactions never wait for each other."""
    lock_keys(conn, [f"spend:{scope}:{scope_id}" for scope, scope_id in scopes])


def keys_of(account: str, guild_id: str | None, created_at: float, tz: ZoneInfo) -> list[Key]:
    day, month = periods(created_at, tz)
    return [(scope, scope_id, period) for scope, scope_id in scopes_of(account, guild_id) for period in (day, month, ALL)]


def charge_of(state: str, estimate_micros: int, actual_micros: int | None) -> int:
    """What one hold counts against a cap (the Python twin of ``ledger.CHARGE``)."""
    if state == "settled":
        return actual_micros if actual_micros is not None else estimate_micros
    if state == "released":
        return 0
    return estimate_micros


UPSERT_ROW = "(?,?,?,?,?,?)"
UPSERT_TAIL = (" ON CONFLICT(scope, scope_id, period) DO UPDATE SET"
               " charge_micros = spend_totals.charge_micros + excluded.charge_micros,"
               " holds = spend_totals.holds + excluded.holds,"
               " open_holds = spend_totals.open_holds + excluded.open_holds")


def add(conn: sqlite3.Connection, keys: Iterable[Key], change: Total) -> None:
    """Add ``change`` to every row in ``keys`` (created on first use), in one statement."""
    keys = list(keys)
    conn.execute(
        "INSERT INTO spend_totals(scope, scope_id, period, charge_micros, holds, open_holds) VALUES "
        + ",".join(UPSERT_ROW for _ in keys) + UPSERT_TAIL,
        [v for key in keys for v in (*key, change.charge_micros, change.holds, change.open_holds)])


LAST_DAY = "day:9999-12-31"


def read(conn: sqlite3.Connection, scopes: Iterable[tuple[str, str]], day: str, month: str,
         since_day: str | None = None) -> dict[Key, Total]:
    """The rows of ``scopes`` for today, this month and all time, in one query (missing = zero);
    with ``since_day``, also every day row from that day on (``holds_since``). Day periods are
    ``day:YYYY-MM-DD``, so they order by date in any collation."""
    scopes = list(scopes)
    where = " OR ".join("(scope = ? AND scope_id = ?)" for _ in scopes)
    periods, args = "period IN (?, ?, ?)", [day, month, ALL]
    if since_day is not None:
        periods, args = "(period IN (?, ?) OR period BETWEEN ? AND ?)", [month, ALL, since_day, LAST_DAY]
    rows = conn.execute(f"SELECT scope, scope_id, period, charge_micros, holds, open_holds FROM spend_totals"
                        f" WHERE {periods} AND ({where})",
                        (*args, *(v for scope in scopes for v in scope))).fetchall()
    return {(r[0], r[1], r[2]): Total(r[3], r[4], r[5]) for r in rows}


def holds_since(rows: Mapping[Key, Total], scope: str, scope_id: str, since_day: str) -> int:
    """How many holds of one scope were created on ``since_day`` or later, from ``read``'s rows:
    at least as many as were created since any moment of that day."""
    return sum(total.holds for (s, i, period), total in rows.items()
               if s == scope and i == scope_id and period.startswith("day:") and since_day <= period <= LAST_DAY)


def expected(holds: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> dict[Key, Total]:
    """The totals recomputed from hold rows (account, guild_id, created_at, state, estimate, actual, tool)."""
    result: dict[Key, Total] = {}
    for h in holds:
        one = Total(charge_of(h["state"], h["estimate_micros"], h["actual_micros"]), 1,
                    1 if h["state"] in ("held", "submitted") and is_job(h["tool"]) else 0)
        for key in keys_of(h["account"], h["guild_id"], h["created_at"], tz):
            result[key] = result.get(key, Total()) + one
    return result


HOLD_COLUMNS = "account, guild_id, created_at, state, estimate_micros, actual_micros, tool"


def stored_timezone(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM ledger_meta WHERE key = ?", (TIMEZONE_KEY,)).fetchone()
    return None if row is None else row[0]


def rebuild(conn: sqlite3.Connection, tz: ZoneInfo) -> int:
    """Replace every total with what the holds say, kept in ``tz``; returns the number of rows."""
    holds = conn.execute(f"SELECT {HOLD_COLUMNS} FROM holds").fetchall()
    totals = expected(holds, tz)
    conn.execute("DELETE FROM spend_totals")
    conn.executemany(
        "INSERT INTO spend_totals(scope, scope_id, period, charge_micros, holds, open_holds) VALUES (?,?,?,?,?,?)",
        [(*key, t.charge_micros, t.holds, t.open_holds) for key, t in totals.items()])
    conn.execute("INSERT INTO ledger_meta(key, value) VALUES (?, ?)"
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (TIMEZONE_KEY, tz.key))
    return len(totals)


def ensure(conn: sqlite3.Connection, tz: ZoneInfo) -> bool:
    """Inside a write transaction: build the totals if this database has none yet (it was made
    before they existed) or they were kept in another time zone. True if it rebuilt them."""
    if stored_timezone(conn) == tz.key:
        return False
    not_quick_from_here()  # a rebuild reads every hold: not on the event loop's thread
    lock_keys(conn, ["spend:global:"])  # every hold counts in the global scope: all writers wait
    if stored_timezone(conn) == tz.key:  # another process built them while this one waited
        return False
    rebuild(conn, tz)
    return True
