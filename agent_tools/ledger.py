"""Accounts, limits and the money: who may spend how much, and what was spent.

The rules this file keeps (see ``docs`` in the README for the operator's view):

- Money is integer micro-dollars. A *hold* reserves a job's estimated cost before the provider is
  called; it ends ``settled`` (charged the actual cost) or ``released`` (charged nothing).
  What counts against a limit: settled holds at their actual cost, open holds at their estimate.
- ``reserve`` checks every applicable limit — the account's (defaults ← Discord roles ← the
  account's own), its guild's, the global cap; daily and monthly spend, concurrent jobs, jobs per
  hour — and inserts the hold in one ``BEGIN IMMEDIATE`` transaction, so concurrent reservations
  from any number of processes can never overspend.
- ``settle`` and ``release`` are conditional (``WHERE state IN …``): repeating one is a no-op.
- Every change appends to ``audit`` in the same transaction; triggers forbid editing the audit.
- Windows are calendar days and months in the configured time zone; a charge belongs to the window
  its hold was created in. Nothing is ever "reset": usage is a sum over the window, kept as a
  running total per (scope, scope id, period) in the same transaction as every hold change
  (``totals.py``), so a reservation costs the same whatever the history; ``check_books``
  recomputes the totals from the holds and the holds from the audit.
"""

from __future__ import annotations

import hashlib
import inspect
import secrets
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from . import totals
from .config import LimitSettings, Settings
from .db import Database, Transaction, lock_keys, placeholders
from .errors import UserError
from .money import format_usd, usd

T = TypeVar("T")
ReserveHook = Callable[[sqlite3.Connection, str], "str | None"]
"""Runs in a reservation's transaction on the database thread: records the job, returns its id."""
AsyncReserveHook = Callable[[Transaction, str], Awaitable["str | None"]]

CHARGE = "CASE state WHEN 'settled' THEN COALESCE(actual_micros, estimate_micros) WHEN 'released' THEN 0 ELSE estimate_micros END"
OPEN_STATES = ("held", "submitted")
SCOPES = ("account", "role", "guild", "global")
TOKEN_PREFIX = "vg_"



# -- values ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """One set of limits; None means "no limit of this kind" (or, in an override, "inherit")."""

    daily_micros: int | None = None
    monthly_micros: int | None = None
    concurrent_jobs: int | None = None
    jobs_per_hour: int | None = None
    warn_at: float | None = None

    @classmethod
    def from_settings(cls, limits: LimitSettings) -> "Limits":
        return cls(limits.daily_micros, limits.monthly_micros, limits.concurrent_jobs, limits.jobs_per_hour,
                   limits.warn_at)

    def over(self, base: "Limits") -> "Limits":
        """These limits where set, else ``base``'s."""
        return Limits(*(mine if mine is not None else theirs for mine, theirs in zip(self.fields(), base.fields())))

    def fields(self) -> tuple[Any, ...]:
        return (self.daily_micros, self.monthly_micros, self.concurrent_jobs, self.jobs_per_hour, self.warn_at)

    @property
    def empty(self) -> bool:
        return all(v is None for v in self.fields())


def most_generous(limits: Iterable[Limits]) -> Limits:
    """Several roles: each field takes the highest set value (a role grants, it never restricts)."""
    chosen: list[Any] = [None] * 5
    for item in limits:
        for i, value in enumerate(item.fields()):
            if value is not None and (chosen[i] is None or value > chosen[i]):
                chosen[i] = value
    return Limits(*chosen)


@dataclass(frozen=True)
class Requester:
    """Who is reserving, with the context a Discord interaction adds."""

    account: str
    guild_id: str | None = None
    role_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    name: str  # "today", "this month", "the last hour"
    start: float
    end: float


class QuotaExceeded(UserError):
    """A reservation refused by a limit, with everything a surface needs to explain it."""

    def __init__(self, *, what: str, asked_micros: int, remaining_micros: int | None, limit: str, scope: str,
                 resets_at: float | None, now: float, tz: ZoneInfo, message: str | None = None) -> None:
        self.what = what
        self.asked_micros = asked_micros
        self.remaining_micros = remaining_micros
        self.limit = limit
        self.scope = scope
        self.resets_at = resets_at
        super().__init__(message or self._compose(what, now, tz))

    def _compose(self, what: str, now: float, tz: ZoneInfo) -> str:
        left = format_usd(max(self.remaining_micros or 0, 0))
        owner = {"account": "you have", "guild": "this server has", "global": "the operator's budget has"}[self.scope]
        return (f"{what} costs {format_usd(self.asked_micros)}; {owner} {left} left {self.limit} "
                f"({resets_phrase(self.resets_at, now, tz)}).")


def resets_phrase(resets_at: float | None, now: float, tz: ZoneInfo) -> str:
    """``resets at 00:00 UTC, in 3 h 12 min`` (or on a date when it is not today)."""
    if resets_at is None:
        return "no reset"
    when = datetime.fromtimestamp(resets_at, tz)
    today = datetime.fromtimestamp(now, tz).date()
    label = when.strftime("%H:%M %Z") if when.date() <= today + timedelta(days=1) else when.strftime("%b %d, %H:%M %Z")
    return f"resets at {label}, in {duration_phrase(resets_at - now)}"


def duration_phrase(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{max(mins, 1)} min"


@dataclass(frozen=True)
class Reservation:
    hold_id: str
    estimate_micros: int
    warnings: tuple[str, ...] = ()
    existing: bool = False  # the idempotency key matched an earlier hold


@dataclass(frozen=True)
class LimitStatus:
    scope: str
    scope_id: str
    kind: str  # "daily", "monthly", "concurrent", "hourly"
    limit: int
    used: int
    resets_at: float | None

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


@dataclass(frozen=True)
class Hold:
    id: str
    account: str
    guild_id: str | None
    tool: str
    estimate_micros: int
    actual_micros: int | None
    state: str
    job_id: str | None
    created_at: float
    job_state: str | None = None


@dataclass
class SpendRow:
    key: str
    jobs: int = 0
    settled_micros: int = 0
    open_micros: int = 0


@dataclass(frozen=True)
class TokenInfo:
    """A token as an operator sees it: never the token, only its hash (the key to revoke it by)."""

    token_hash: str
    account: str
    label: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    event: str
    account: str | None
    hold_id: str | None
    amount: int | None
    detail: str


# -- the ledger --------------------------------------------------------------------------------

class Ledger:
    def __init__(self, db: Database, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.tz = ZoneInfo(settings.quotas.timezone)
        self.defaults = Limits.from_settings(settings.quotas.default)
        self.global_defaults = Limits.from_settings(settings.quotas.global_)

    # -- windows ------------------------------------------------------------------------------

    def windows(self, now: float) -> dict[str, Window]:
        local = datetime.fromtimestamp(now, self.tz)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        next_day = (day + timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=self.tz)
        month = day.replace(day=1)
        next_month = (month.replace(year=month.year + 1, month=1) if month.month == 12
                      else month.replace(month=month.month + 1))
        return {"daily": Window("today", day.timestamp(), next_day.timestamp()),
                "monthly": Window("this month", month.timestamp(), next_month.timestamp()),
                "hourly": Window("in the last hour", now - 3600, now + 3600)}

    # -- accounts -----------------------------------------------------------------------------

    async def ensure_account(self, name: str, tx: Transaction | None = None) -> None:
        sql, args = "INSERT INTO accounts(name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, self.clock())
        if tx is not None:
            await tx.execute(sql, args)
        else:
            await self.db.run(lambda conn: conn.execute(sql, args))

    async def add_account(self, name: str, *, actor: str = "") -> None:
        check_account_name(name)
        async with self.db.transaction() as tx:
            cursor = await tx.execute("INSERT INTO accounts(name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                                      (name, self.clock()))
            if cursor.rowcount == 0:
                raise UserError(f"Account '{name}' already exists.")
            await self._audit(tx, None, name, "account_add", None, "", actor)

    async def accounts(self) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT a.name, a.created_at,"
            " (SELECT group_concat(kind || ':' || external_id, ', ') FROM identities i WHERE i.account = a.name) AS ids,"
            " (SELECT COUNT(*) FROM tokens t WHERE t.account = a.name AND t.revoked_at IS NULL) AS tokens"
            " FROM accounts a ORDER BY a.name")
        return [dict(r) for r in rows]

    async def require_account(self, name: str) -> None:
        if await self.db.scalar("SELECT 1 FROM accounts WHERE name = ?", (name,)) is None:
            names = [r["name"] for r in await self.db.fetchall("SELECT name FROM accounts ORDER BY name")]
            known = ", ".join(names) if names else "none yet"
            raise UserError(f"No account '{name}'. Accounts: {known}. `videogen accounts add NAME` creates one.")

    async def account_for_discord(self, user_id: str | int) -> str:
        """The account a Discord user acts as: a linked one, else their own, created on first use."""
        row = await self.db.fetchone("SELECT account FROM identities WHERE kind = 'discord' AND external_id = ?",
                                     (str(user_id),))
        if row is not None:
            return row["account"]
        name = f"discord-{user_id}"
        async with self.db.transaction() as tx:
            await self.ensure_account(name, tx)
            await tx.execute("INSERT INTO identities(kind, external_id, account, created_at)"
                             " VALUES ('discord', ?, ?, ?) ON CONFLICT DO NOTHING", (str(user_id), name, self.clock()))
        return await self.account_for_discord(user_id)

    async def link_discord(self, account: str, user_id: str | int, *, actor: str = "") -> None:
        """Make a Discord user act as ``account`` so their Discord and MCP use share one budget."""
        await self.require_account(account)
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO identities(kind, external_id, account, created_at) VALUES ('discord', ?, ?, ?)"
                             " ON CONFLICT(kind, external_id) DO UPDATE SET account = excluded.account",
                             (str(user_id), account, self.clock()))
            await self._audit(tx, None, account, "link", None, f"discord:{user_id}", actor)

    async def create_token(self, account: str, *, label: str = "", actor: str = "") -> str:
        """A new HTTP bearer token for ``account``. Returned once; only its hash is stored."""
        await self.require_account(account)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO tokens(token_hash, account, label, created_at) VALUES (?, ?, ?, ?)",
                             (hash_token(token), account, label, self.clock()))
            await self._audit(tx, None, account, "token_create", None, label, actor)
        return token

    async def account_for_token(self, token: str) -> str | None:
        row = await self.db.fetchone("SELECT account FROM tokens WHERE token_hash = ? AND revoked_at IS NULL",
                                     (hash_token(token),))
        return None if row is None else row["account"]

    async def account_for_token_hash(self, token_hash: str) -> str | None:
        """The account of a live token known by its hash (a dashboard session keeps only the hash)."""
        row = await self.db.fetchone("SELECT account FROM tokens WHERE token_hash = ? AND revoked_at IS NULL",
                                     (token_hash,))
        return None if row is None else row["account"]

    async def tokens(self) -> list[TokenInfo]:
        """Every token, newest first: who holds it, its label, when it was made, used and revoked."""
        rows = await self.db.fetchall("SELECT token_hash, account, label, created_at, last_used_at, revoked_at"
                                      " FROM tokens ORDER BY created_at DESC")
        return [TokenInfo(*r) for r in rows]

    async def revoke_token(self, token_hash: str, *, actor: str = "") -> bool:
        """Revoke a token by its hash; False if it is unknown or already revoked (a no-op)."""
        async with self.db.transaction() as tx:
            row = await (await tx.execute("SELECT account, label FROM tokens WHERE token_hash = ?"
                                          " AND revoked_at IS NULL", (token_hash,))).fetchone()
            if row is None:
                return False
            await tx.execute("UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                             (self.clock(), token_hash))
            await self._audit(tx, None, row["account"], "token_revoke", None, row["label"], actor)
        return True

    # -- limits -------------------------------------------------------------------------------

    async def set_limits(self, scope: str, scope_id: str, limits: Limits, *, actor: str = "") -> Limits:
        """Merge ``limits`` into the stored override for one scope (unset fields are kept)."""
        if scope not in SCOPES:
            raise UserError(f"Unknown scope '{scope}'; use one of {', '.join(SCOPES)}.")
        if scope == "account":
            await self.require_account(scope_id)
        validate_limits(limits)
        async with self.db.transaction() as tx:
            await tx.run(lambda conn: lock_keys(conn, [f"limits:{scope}:{scope_id}"]))  # two merges take turns
            merged = limits.over(await self.stored_limits(scope, scope_id, tx))  # read and write together
            await tx.execute(
                "INSERT INTO limits(scope, scope_id, daily_micros, monthly_micros, concurrent_jobs, jobs_per_hour,"
                " warn_at, updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(scope, scope_id) DO UPDATE SET"
                " daily_micros = excluded.daily_micros, monthly_micros = excluded.monthly_micros,"
                " concurrent_jobs = excluded.concurrent_jobs, jobs_per_hour = excluded.jobs_per_hour,"
                " warn_at = excluded.warn_at, updated_at = excluded.updated_at",
                (scope, scope_id, *merged.fields(), self.clock()))
            await self._audit(tx, None, scope_id if scope == "account" else None, "limits_set", None,
                              f"{scope}:{scope_id} {merged}", actor)
        return merged

    # Each operation below is a synchronous body run on the database thread in one hop
    # (``Database.run``: BEGIN IMMEDIATE … COMMIT), or inside a caller's transaction: ``tx`` is a
    # ``Transaction`` from ``db.transaction()`` (its ``run`` is one hop too), a ``sqlite3.Connection``
    # when the caller is itself a body on the database thread (``*_in`` methods).

    async def _apply(self, tx: Transaction | None, body: Callable[[sqlite3.Connection], T]) -> T:
        """A hold's change (a few indexed statements): in the caller's transaction, or in its own
        quick one (``Database.run``)."""
        return await (tx.run(body) if tx is not None else self.db.run(body, quick=True))

    def _stored_limits_in(self, conn: sqlite3.Connection, scope: str, scope_id: str) -> Limits:
        row = conn.execute("SELECT daily_micros, monthly_micros, concurrent_jobs, jobs_per_hour, warn_at FROM limits"
                           " WHERE scope = ? AND scope_id = ?", (scope, scope_id)).fetchone()
        return Limits(*row) if row is not None else Limits()

    async def stored_limits(self, scope: str, scope_id: str, tx: Transaction | None = None) -> Limits:
        body = lambda conn: self._stored_limits_in(conn, scope, scope_id)  # noqa: E731
        return await (tx.run(body) if tx is not None else self.db.read(body))

    async def limit_overrides(self) -> list[tuple[str, str, Limits]]:
        """Every stored override: (scope, scope id, limits), by scope then id."""
        rows = await self.db.fetchall(
            "SELECT scope, scope_id, daily_micros, monthly_micros, concurrent_jobs, jobs_per_hour, warn_at"
            " FROM limits ORDER BY scope, scope_id")
        return [(r[0], r[1], Limits(*tuple(r)[2:])) for r in rows]

    def _effective_limits_in(self, conn: sqlite3.Connection, who: Requester) -> dict[tuple[str, str], Limits]:
        wanted = [*(("role", r) for r in who.role_ids), ("account", who.account),
                  *([("guild", who.guild_id)] if who.guild_id else []), ("global", "")]
        where = " OR ".join("(scope = ? AND scope_id = ?)" for _ in wanted)
        stored = {(r[0], r[1]): Limits(*tuple(r)[2:]) for r in conn.execute(  # every override in one query
            "SELECT scope, scope_id, daily_micros, monthly_micros, concurrent_jobs, jobs_per_hour, warn_at FROM limits"
            f" WHERE {where}", [v for key in wanted for v in key]).fetchall()}
        roles = [stored.get(("role", r), Limits()) for r in who.role_ids]
        base = most_generous([*roles, self.defaults]).over(self.defaults)  # a role raises limits, never lowers them
        account = stored.get(("account", who.account), Limits()).over(base)
        result = {("account", who.account): account}
        if who.guild_id:
            guild = stored.get(("guild", who.guild_id), Limits())
            if not guild.empty:
                result[("guild", who.guild_id)] = guild
        glob = stored.get(("global", ""), Limits()).over(self.global_defaults)
        if not glob.empty:
            result[("global", "")] = glob
        return result

    async def effective_limits(self, who: Requester, tx: Transaction | None = None) -> dict[tuple[str, str], Limits]:
        """(scope, id) → the limits that apply to this requester, for each scope that has any."""
        body = lambda conn: self._effective_limits_in(conn, who)  # noqa: E731
        return await (tx.run(body) if tx is not None else self.db.read(body))

    # -- usage --------------------------------------------------------------------------------

    @staticmethod
    def _scope_filter(scope: str, scope_id: str) -> tuple[str, tuple[Any, ...]]:
        if scope == "account":
            return "account = ?", (scope_id,)
        if scope == "guild":
            return "guild_id = ?", (scope_id,)
        return "1 = 1", ()

    def _usage_in(self, conn: sqlite3.Connection, limits: Mapping[tuple[str, str], Limits],
                  now: float, *, exact_hourly: bool = True) -> dict[tuple[str, str], dict[str, int]]:
        """Today's and this month's charge and the open holds of every scope from the running
        totals (one query, a few rows whatever the history); the jobs started in the last hour,
        where a jobs-per-hour limit applies, from the holds' (scope, created_at) index.

        That count reads every hold of the last hour, so a check (``exact_hourly=False``) first
        bounds it from the same totals: no more holds were created since an hour ago than in the
        days that hour began in and after. Only a bound that reaches the limit is replaced by the
        count; a smaller one is returned as it is, since the exact number could not refuse either
        (a report, ``status``, always counts)."""
        day, month = totals.periods(now, self.tz)
        since_day = totals.periods(now - 3600, self.tz)[0]
        rows = totals.read(conn, limits, day, month, since_day)
        zero = totals.Total()
        result = {}
        for (scope, scope_id), limit in limits.items():
            hourly = 0
            if limit.jobs_per_hour is not None:
                hourly = totals.holds_since(rows, scope, scope_id, since_day)
                if exact_hourly or hourly >= limit.jobs_per_hour:
                    hourly = self._jobs_last_hour_in(conn, scope, scope_id, now)
            result[(scope, scope_id)] = {"daily": rows.get((scope, scope_id, day), zero).charge_micros,
                                         "monthly": rows.get((scope, scope_id, month), zero).charge_micros,
                                         "concurrent": rows.get((scope, scope_id, totals.ALL), zero).open_holds,
                                         "hourly": hourly}
        return result

    def _jobs_last_hour_in(self, conn: sqlite3.Connection, scope: str, scope_id: str, now: float) -> int:
        where, args = self._scope_filter(scope, scope_id)
        return conn.execute(f"SELECT COUNT(*) FROM holds WHERE {where} AND created_at >= ?"
                            f" AND tool NOT LIKE '{totals.TOKEN_PREFIX}%'", (*args, now - 3600)).fetchone()[0]

    async def ensure_totals(self) -> bool:
        """Build the running totals if this database has none yet or kept them in another time zone
        (the migration of an older database; a time zone change). True if it (re)built them."""
        if await self.db.read(totals.stored_timezone) == self.tz.key:
            return False
        return await self.db.run(lambda conn: totals.ensure(conn, self.tz))

    # -- reserve / settle / release ----------------------------------------------------------

    async def reserve(self, who: Requester, estimate_micros: int, idempotency_key: str, *, tool: str,
                      what: str | None = None, tx_hook: ReserveHook | AsyncReserveHook | None = None) -> Reservation:
        """Hold ``estimate_micros`` for a job if every limit allows it, else ``QuotaExceeded``.

        ``tx_hook(conn, hold_id)`` runs inside the same transaction (the Toolkit records the job
        there and returns its id), so a hold and its job exist together or not at all. A plain
        function runs on the database thread with the rest, in one hop; a coroutine function
        (``tx_hook(tx, hold_id)`` with a ``Transaction``, the older form) makes more hops.
        """
        if estimate_micros < 0:
            raise ValueError("an estimate cannot be negative")
        now = self.clock()
        what = what or f"This {tool} run"
        if tx_hook is not None and inspect.iscoroutinefunction(tx_hook):
            async with self.db.transaction() as tx:
                reservation = await tx.run(lambda conn: self._reserve_in(conn, who, estimate_micros, idempotency_key,
                                                                         tool, what, now, None))
                if not reservation.existing and (job_id := await tx_hook(tx, reservation.hold_id)):
                    await tx.execute("UPDATE holds SET job_id = ? WHERE id = ?", (job_id, reservation.hold_id))
            return reservation
        return await self.db.run(lambda conn: self._reserve_in(conn, who, estimate_micros, idempotency_key, tool,
                                                               what, now, tx_hook),  # type: ignore[arg-type]
                                 quick=True)

    def _reserve_in(self, conn: sqlite3.Connection, who: Requester, estimate_micros: int, idempotency_key: str,
                    tool: str, what: str, now: float, hook: ReserveHook | None) -> Reservation:
        # first, the account: its idempotency check and its own counts must see every earlier hold
        totals.lock(conn, [("account", who.account)])
        existing = conn.execute("SELECT id, estimate_micros FROM holds WHERE idempotency_key = ?",
                                (idempotency_key,)).fetchone()
        if existing is not None:
            return Reservation(existing["id"], existing["estimate_micros"], existing=True)
        conn.execute("INSERT INTO accounts(name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (who.account, now))
        totals.ensure(conn, self.tz)
        limits = self._effective_limits_in(conn, who)
        # then the scopes other accounts share (a guild, the operator's budget), only where a limit
        # is checked, and as late as possible: concurrent reservations queue on these until commit
        totals.lock(conn, [scope for scope in limits if scope[0] != "account"])
        used = self._usage_in(conn, limits, now, exact_hourly=False)
        job = totals.is_job(tool)
        warnings = []
        for (scope, scope_id), scope_limits in limits.items():
            warnings += self._check(scope, scope_limits, used[(scope, scope_id)], estimate_micros, what, now, job=job)
        hold_id = uuid.uuid4().hex[:20]
        conn.execute(
            "INSERT INTO holds(id, idempotency_key, account, guild_id, tool, estimate_micros, state, created_at,"
            " updated_at) VALUES (?,?,?,?,?,?,'held',?,?)",
            (hold_id, idempotency_key, who.account, who.guild_id, tool, estimate_micros, now, now))
        self._audit_in(conn, hold_id, who.account, "reserve", estimate_micros, tool, who.account, now)
        totals.add(conn, totals.keys_of(who.account, who.guild_id, now, self.tz),
                   totals.Total(estimate_micros, 1, 1 if job else 0))
        if hook is not None and (job_id := hook(conn, hold_id)):
            # linked from the start, so ``holds`` can say what became of the job
            conn.execute("UPDATE holds SET job_id = ? WHERE id = ?", (job_id, hold_id))
        return Reservation(hold_id, estimate_micros, tuple(warnings))

    async def check(self, who: Requester, estimate_micros: int, *, tool: str, what: str | None = None) -> None:
        """``QuotaExceeded`` if a reservation of ``estimate_micros`` would be refused now; writes nothing.

        A surface asks this before it answers anyone, so a refusal can be private from its first
        byte; ``reserve`` checks again in its transaction, which is the check that counts.
        """
        now = self.clock()
        await self.ensure_totals()

        def body(conn: sqlite3.Connection) -> None:
            effective = self._effective_limits_in(conn, who)
            usage = self._usage_in(conn, effective, now, exact_hourly=False)
            for (scope, scope_id), limits in effective.items():
                self._check(scope, limits, usage[(scope, scope_id)], estimate_micros, what or f"This {tool} run", now,
                            job=totals.is_job(tool))

        await self.db.read(body)

    def _check(self, scope: str, limits: Limits, used: Mapping[str, int], asked: int, what: str,
               now: float, *, job: bool = True) -> list[str]:
        """Raise ``QuotaExceeded`` if ``asked`` breaks a limit; the job-count limits apply to jobs only
        (a chat agent's token charge is money, not a job). Returns the budget warnings. The windows'
        names and ends are worked out only for a refusal or a warning (most checks pass without them)."""
        for kind, cap in (("daily", limits.daily_micros), ("monthly", limits.monthly_micros)):
            if cap is not None and asked > cap:
                windows = self.windows(now)
                raise QuotaExceeded(
                    what=what, asked_micros=asked, remaining_micros=cap - used[kind], limit=windows[kind].name,
                    scope=scope, resets_at=windows[kind].end, now=now, tz=self.tz,
                    message=(f"{what} costs {format_usd(asked)}, more than the whole {kind} limit of "
                             f"{format_usd(cap)}; choose a shorter, smaller or cheaper option, or ask an admin "
                             "to raise the limit."))
            if cap is not None and used[kind] + asked > cap:
                windows = self.windows(now)
                raise QuotaExceeded(what=what, asked_micros=asked, remaining_micros=cap - used[kind],
                                    limit=windows[kind].name, scope=scope, resets_at=windows[kind].end, now=now,
                                    tz=self.tz)
        owner = {"account": "You have", "guild": "This server has", "global": "The operator's account has"}[scope]
        if job and limits.concurrent_jobs is not None and used["concurrent"] >= limits.concurrent_jobs:
            raise QuotaExceeded(
                what=what, asked_micros=asked, remaining_micros=None, limit="concurrent jobs", scope=scope,
                resets_at=None, now=now, tz=self.tz,
                message=(f"{owner} {used['concurrent']} job(s) running, the limit at once is "
                         f"{limits.concurrent_jobs}; wait for one to finish or cancel one, then try again."))
        if job and limits.jobs_per_hour is not None and used["hourly"] >= limits.jobs_per_hour:
            raise QuotaExceeded(
                what=what, asked_micros=asked, remaining_micros=None, limit="jobs per hour", scope=scope,
                resets_at=None, now=now, tz=self.tz,
                message=(f"{owner} started {used['hourly']} job(s) in the last hour, the limit is "
                         f"{limits.jobs_per_hour} per hour; try again in a few minutes."))
        warnings = []
        if limits.warn_at is not None:
            for kind, cap in (("daily", limits.daily_micros), ("monthly", limits.monthly_micros)):
                if cap and used[kind] + asked >= limits.warn_at * cap > used[kind]:
                    left = cap - used[kind] - asked
                    period = "today's" if kind == "daily" else "this month's"
                    windows = self.windows(now)
                    warnings.append(f"{owner} used {round((used[kind] + asked) * 100 / cap)} % of "
                                    f"{period} budget; {format_usd(left)} left "
                                    f"({resets_phrase(windows[kind].end, now, self.tz)}).")
        return warnings

    def _transition_in(self, conn: sqlite3.Connection, hold_id: str, to: str, from_states: Sequence[str], *,
                       amount: int | None = None, job_id: str | None = None, detail: str = "",
                       actor: str = "") -> bool:
        now = self.clock()
        ends = to in ("settled", "released")
        if ends:
            # before the change, so a first build of the totals cannot count it twice. No spend lock:
            # the change below only adds to the totals (``totals.lock`` says why that is exact)
            totals.ensure(conn, self.tz)
        row = conn.execute(
            f"UPDATE holds SET state = ?, actual_micros = COALESCE(?, actual_micros), job_id = COALESCE(?, job_id),"
            f" updated_at = ? WHERE id = ? AND state IN ({placeholders(from_states)})"
            f" RETURNING account, guild_id, created_at, estimate_micros, actual_micros, tool",
            (to, amount, job_id, now, hold_id, *from_states)).fetchone()
        if row is None:
            return False
        account, guild_id, created_at, estimate, actual, tool = tuple(row)
        self._audit_in(conn, hold_id, account, to, amount, detail, actor, now)
        if ends:  # an open hold counted its estimate; now it counts its actual cost, or nothing
            totals.add(conn, totals.keys_of(account, guild_id, created_at, self.tz),
                       totals.Total(totals.charge_of(to, estimate, actual) - estimate, 0,
                                    -1 if totals.is_job(tool) else 0))
        return True

    def move_hold_in(self, conn: sqlite3.Connection, hold_id: str, who: Requester, *, tool: str,
                     estimate_micros: int, what: str) -> None:
        """A failover moved this open hold's job to ``tool``, which costs ``estimate_micros``.

        A cheaper or equal run keeps the hold as it is (the job settles at its own, lower cost); a
        dearer one raises the hold by the difference only if the money limits allow it (else
        ``QuotaExceeded``, and the caller's transaction, with the move, rolls back). The raise is
        audited as ``estimate_raised`` and added to the running totals in this same transaction.
        """
        row = conn.execute(
            f"SELECT account, guild_id, created_at, estimate_micros FROM holds WHERE id = ? AND state IN"
            f" ({placeholders(OPEN_STATES)})", (hold_id, *OPEN_STATES)).fetchone()
        if row is None:
            raise UserError(f"Hold {hold_id} is no longer open, so its job cannot be moved.")
        account, guild_id, created_at, held = tuple(row)
        raise_by = estimate_micros - held
        now = self.clock()
        if raise_by > 0:
            totals.lock(conn, totals.scopes_of(account, guild_id))
            totals.ensure(conn, self.tz)
            limits = self._effective_limits_in(conn, who)
            used = self._usage_in(conn, limits, now)
            for (scope, scope_id), scope_limits in limits.items():
                money_only = Limits(scope_limits.daily_micros, scope_limits.monthly_micros)  # still one job
                self._check(scope, money_only, used[(scope, scope_id)], raise_by, what, now)
            conn.execute("UPDATE holds SET estimate_micros = ?, tool = ?, updated_at = ? WHERE id = ?",
                         (estimate_micros, tool, now, hold_id))
            self._audit_in(conn, hold_id, account, "estimate_raised", raise_by, f"failover to {tool}", account, now)
            totals.add(conn, totals.keys_of(account, guild_id, created_at, self.tz), totals.Total(raise_by, 0, 0))
        else:
            conn.execute("UPDATE holds SET tool = ? WHERE id = ?", (tool, hold_id))
            self._audit_in(conn, hold_id, account, "rerouted", None, f"failover to {tool}", account, now)

    def adjust_settled_in(self, conn: sqlite3.Connection, hold_id: str, actual_micros: int, *, detail: str,
                          actor: str) -> int | None:
        """Change what a settled hold charged (reconciliation with the provider's bill); returns the
        old charge, or None if the hold is not settled (nothing changed).

        Never below zero. The change counts in the periods the hold was created in, like its charge
        did: a closed day or month gets its true total, and no refusal made in it is revisited; only
        a change in the current window moves what is left now. Audited as ``adjusted`` (the hold's
        last word, which ``check_books`` reads) and added to the running totals in this transaction.
        """
        if actual_micros < 0:
            raise ValueError("an adjusted charge cannot be negative")
        row = conn.execute("SELECT account, guild_id, created_at, actual_micros FROM holds"
                           " WHERE id = ? AND state = 'settled'", (hold_id,)).fetchone()
        if row is None:
            return None
        account, guild_id, created_at, old = tuple(row)
        old = old or 0
        if old == actual_micros:
            return old
        now = self.clock()
        totals.ensure(conn, self.tz)
        conn.execute("UPDATE holds SET actual_micros = ?, updated_at = ? WHERE id = ? AND state = 'settled'",
                     (actual_micros, now, hold_id))
        self._audit_in(conn, hold_id, account, "adjusted", actual_micros, detail, actor, now)
        totals.add(conn, totals.keys_of(account, guild_id, created_at, self.tz), totals.Total(actual_micros - old, 0, 0))
        return old

    async def adjust_settled(self, hold_id: str, actual_micros: int, *, detail: str, actor: str,
                             tx: Transaction) -> int | None:
        """``adjust_settled_in`` inside the caller's ``Transaction``."""
        return await tx.run(lambda conn: self.adjust_settled_in(conn, hold_id, actual_micros, detail=detail,
                                                                actor=actor))

    async def move_hold(self, hold_id: str, who: Requester, *, tool: str, estimate_micros: int, what: str,
                        tx: Transaction) -> None:
        """``move_hold_in`` inside the caller's ``Transaction``."""
        await tx.run(lambda conn: self.move_hold_in(conn, hold_id, who, tool=tool, estimate_micros=estimate_micros,
                                                    what=what))

    def mark_submitted_in(self, conn: sqlite3.Connection, hold_id: str, job_id: str) -> bool:
        return self._transition_in(conn, hold_id, "submitted", ("held",), job_id=job_id)

    def settle_in(self, conn: sqlite3.Connection, hold_id: str, actual_micros: int, *, detail: str = "",
                  actor: str = "") -> bool:
        """Charge a hold its actual cost, inside a body on the database thread. False if it was
        already settled or released (no-op)."""
        if actual_micros < 0:
            raise ValueError("an actual cost cannot be negative")
        return self._transition_in(conn, hold_id, "settled", OPEN_STATES, amount=actual_micros, detail=detail,
                                   actor=actor)

    def release_in(self, conn: sqlite3.Connection, hold_id: str, *, detail: str = "", actor: str = "") -> bool:
        """Charge a hold nothing, inside a body on the database thread. False if it had already ended."""
        return self._transition_in(conn, hold_id, "released", OPEN_STATES, amount=0, detail=detail, actor=actor)

    async def mark_submitted(self, hold_id: str, job_id: str, *, tx: Transaction | None = None) -> bool:
        return await self._apply(tx, lambda conn: self.mark_submitted_in(conn, hold_id, job_id))

    async def settle(self, hold_id: str, actual_micros: int, *, detail: str = "", actor: str = "",
                     tx: Transaction | None = None) -> bool:
        """Charge a hold its actual cost. False if it was already settled or released (no-op)."""
        if actual_micros < 0:
            raise ValueError("an actual cost cannot be negative")
        return await self._apply(tx, lambda conn: self.settle_in(conn, hold_id, actual_micros, detail=detail,
                                                                 actor=actor))

    async def release(self, hold_id: str, *, detail: str = "", actor: str = "",
                      tx: Transaction | None = None) -> bool:
        """Charge a hold nothing. False if it was already settled or released (no-op)."""
        return await self._apply(tx, lambda conn: self.release_in(conn, hold_id, detail=detail, actor=actor))

    def _audit_in(self, conn: sqlite3.Connection, hold_id: str | None, account: str | None, event: str,
                  amount: int | None, detail: str, actor: str, now: float | None = None) -> None:
        conn.execute("INSERT INTO audit(hold_id, account, event, amount, detail, actor, at) VALUES (?,?,?,?,?,?,?)",
                     (hold_id, account, event, amount, detail, actor, now if now is not None else self.clock()))

    async def _audit(self, tx: Transaction, hold_id: str | None, account: str | None, event: str,
                     amount: int | None, detail: str, actor: str, now: float | None = None) -> None:
        await tx.execute("INSERT INTO audit(hold_id, account, event, amount, detail, actor, at) VALUES (?,?,?,?,?,?,?)",
                         (hold_id, account, event, amount, detail, actor, now if now is not None else self.clock()))

    # -- reports ------------------------------------------------------------------------------

    async def status(self, who: Requester) -> list[LimitStatus]:
        """Every limit that applies to ``who``: the limit, what is used, when it resets."""
        now = self.clock()
        windows = self.windows(now)
        await self.ensure_totals()
        result = []

        def read(conn: sqlite3.Connection) -> tuple[dict[tuple[str, str], Limits], dict[tuple[str, str], dict[str, int]]]:
            effective = self._effective_limits_in(conn, who)
            return effective, self._usage_in(conn, effective, now)

        effective, usage = await self.db.read(read)
        for (scope, scope_id), limits in effective.items():
            used = usage[(scope, scope_id)]
            for kind, cap in (("daily", limits.daily_micros), ("monthly", limits.monthly_micros),
                              ("concurrent", limits.concurrent_jobs), ("hourly", limits.jobs_per_hour)):
                if cap is not None:
                    resets = windows[kind].end if kind in ("daily", "monthly") else None
                    result.append(LimitStatus(scope, scope_id, kind, cap, used[kind], resets))
        return result

    async def holds(self, *, states: Sequence[str] = OPEN_STATES) -> list[Hold]:
        rows = await self.db.fetchall(
            f"SELECT h.*, j.state AS job_state FROM holds h LEFT JOIN jobs j ON j.id = h.job_id"
            f" WHERE h.state IN ({placeholders(states)}) ORDER BY h.created_at", tuple(states))
        return [Hold(r["id"], r["account"], r["guild_id"], r["tool"], r["estimate_micros"], r["actual_micros"],
                     r["state"], r["job_id"], r["created_at"], r["job_state"]) for r in rows]

    def day_index(self, first: date, last: date) -> tuple[str, list[float], list[date]]:
        """SQL that numbers a hold's calendar day (in the quota time zone) from ``first`` to ``last``,
        so grouping by day happens in SQLite. Days of 24 hours (UTC, or no clock change in the range)
        are plain arithmetic; a range with a clock change uses a ``CASE`` over the days' starts."""
        days = [first + timedelta(days=i) for i in range(max((last - first).days, 0) + 1)]
        starts = [datetime.combine(d, datetime.min.time(), self.tz).timestamp() for d in days]
        if len(days) == 1:
            return "0", [], days
        if all(b - a == 86400 for a, b in zip(starts, starts[1:])):
            return f"MIN(CAST((created_at - ?) / 86400 AS INTEGER), {len(days) - 1})", [starts[0]], days
        whens = " ".join(f"WHEN created_at < ? THEN {i}" for i in range(len(days) - 1))
        return f"CASE {whens} ELSE {len(days) - 1} END", starts[1:], days

    def day_of(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.tz).date()

    async def spend(self, *, by: str = "account", since: date | None = None, account: str | None = None) -> list[SpendRow]:
        """Jobs, settled and open spend per account, model or day: summed by SQLite in one query."""
        if by not in ("account", "model", "day"):
            raise UserError(f"Cannot group spend by '{by}'; use account, model or day.")
        start = datetime.combine(since, datetime.min.time(), self.tz).timestamp() if since else 0.0
        where, args = "created_at >= ?", [start]
        if account is not None:
            where += " AND account = ?"
            args.append(account)
        key_args: list[Any] = []
        days: list[date] = []
        if by == "day":
            span = await self.db.fetchone(f"SELECT MIN(created_at), MAX(created_at) FROM holds WHERE {where}",
                                          tuple(args))
            if span is None or span[0] is None:
                return []
            key, key_args, days = self.day_index(since or self.day_of(span[0]), self.day_of(span[1]))
        else:
            key = "account" if by == "account" else "tool"
        rows = await self.db.fetchall(
            f"SELECT {key} AS k, COALESCE(SUM(CASE WHEN state IN ('settled', 'held', 'submitted') THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN state = 'settled' THEN COALESCE(actual_micros, 0) END), 0),"
            " COALESCE(SUM(CASE WHEN state IN ('held', 'submitted') THEN estimate_micros END), 0)"
            f" FROM holds WHERE {where} GROUP BY k", (*key_args, *args))
        result = [SpendRow(days[k].isoformat() if by == "day" else k, jobs, settled, open_)
                  for k, jobs, settled, open_ in rows]
        return sorted(result, key=lambda g: g.key)

    async def spend_by_day(self, *, by: str, since: date, account: str | None = None) -> dict[str, dict[str, int]]:
        """Settled spend per calendar day (in the quota time zone) and per model or account:
        ``{"2026-12-01": {"sora_2_text_to_video": 1_200_000}}`` — what the dashboard charts."""
        if by not in ("account", "model"):
            raise UserError(f"Cannot chart spend by '{by}'; use account or model.")
        start = datetime.combine(since, datetime.min.time(), self.tz).timestamp()
        day, day_args, days = self.day_index(since, max(since, self.day_of(self.clock())))
        column = "account" if by == "account" else "tool"
        where, args = "created_at >= ? AND state = 'settled'", [start]
        if account is not None:
            where += " AND account = ?"
            args.append(account)
        rows = await self.db.fetchall(f"SELECT {day} AS d, {column}, SUM(COALESCE(actual_micros, 0)) FROM holds"
                                      f" WHERE {where} GROUP BY d, {column}", (*day_args, *args))
        result: dict[str, dict[str, int]] = {}
        for index, key, micros in rows:
            result.setdefault(days[index].isoformat(), {})[key] = micros
        return result

    async def audit_page(self, *, before: int | None = None, limit: int = 50) -> list[AuditEntry]:
        """Audit rows newest first; ``before`` (a seq) gives the next, older page."""
        rows = await self.db.fetchall(
            "SELECT seq, at, actor, event, account, hold_id, amount, detail FROM audit"
            + (" WHERE seq < ?" if before is not None else "") + " ORDER BY seq DESC LIMIT ?",
            (*((before,) if before is not None else ()), limit))
        return [AuditEntry(*r) for r in rows]

    async def books(self) -> dict[str, int]:
        """Totals that must agree: settled holds vs the audit's settle rows, open holds, releases."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(CASE WHEN state = 'settled' THEN actual_micros END), 0),"
            " COALESCE(SUM(CASE WHEN state IN ('held','submitted') THEN estimate_micros END), 0),"
            " COALESCE(SUM(CASE WHEN state = 'released' THEN 1 ELSE 0 END), 0), COUNT(*) FROM holds")
        audit = await self.db.fetchone(
            "SELECT COALESCE(SUM(CASE WHEN event = 'settled' THEN amount END), 0),"
            " COALESCE(SUM(CASE WHEN event = 'reserve' THEN 1 ELSE 0 END), 0) FROM audit")
        return {"settled_micros": row[0], "open_micros": row[1], "released": row[2], "holds": row[3],
                "audit_settled_micros": audit[0], "audit_reserves": audit[1]}


    async def check_books(self) -> "BooksCheck":
        """Recompute the running totals from the holds, and each hold's state and charge from the
        audit, and list every difference (``videogen books check``). Reads one consistent state
        (a snapshot read: a reservation that commits meanwhile is not half in it), without the
        write lock, so nobody's reservation waits for the check."""
        def read(conn: sqlite3.Connection) -> tuple[Any, ...]:
            return (totals.stored_timezone(conn), conn.execute(f"SELECT id, {totals.HOLD_COLUMNS} FROM holds").fetchall(),
                    {(r[0], r[1], r[2]): totals.Total(r[3], r[4], r[5]) for r in conn.execute(
                        "SELECT scope, scope_id, period, charge_micros, holds, open_holds FROM spend_totals")},
                    conn.execute("SELECT hold_id, event, amount FROM audit WHERE hold_id IS NOT NULL ORDER BY seq")
                    .fetchall())

        kept_in, holds, stored, audit = await self.db.read(read, snapshot=True)
        differences = []
        if kept_in != self.tz.key:
            differences.append(f"the running totals are kept in time zone {kept_in or '(none yet)'}, the settings say "
                               f"{self.tz.key}; the next reservation rebuilds them")
        else:
            expected = totals.expected(holds, self.tz)
            for key in sorted(set(stored) | set(expected)):
                have, want = stored.get(key, totals.Total()), expected.get(key, totals.Total())
                if have != want:
                    scope, scope_id, period = key
                    differences.append(
                        f"{scope} {scope_id or '(all)'} {period}: the totals say {format_usd(have.charge_micros)} over "
                        f"{have.holds} hold(s), {have.open_holds} open; the holds say {format_usd(want.charge_micros)} "
                        f"over {want.holds}, {want.open_holds} open")
        differences += _audit_differences(holds, audit)
        return BooksCheck(len(holds), len(stored), tuple(differences))


def _audit_differences(holds: Sequence[Any], audit: Sequence[Any]) -> list[str]:
    """Each hold must have one ``reserve`` row, which with any ``estimate_raised`` rows makes its
    estimate, and, once closed, end with the audit row of its state for its charge; no audit row
    may name a hold that does not exist."""
    reserves: dict[str, list[int]] = {}
    raised: dict[str, int] = {}
    last_end: dict[str, tuple[str, int | None]] = {}
    for hold_id, event, amount in audit:
        if event == "reserve":
            reserves.setdefault(hold_id, []).append(amount)
        elif event == "estimate_raised":  # a failover to a dearer equivalent (move_hold)
            raised[hold_id] = raised.get(hold_id, 0) + amount
        elif event in ("settled", "released"):
            last_end[hold_id] = (event, amount)
        elif event == "adjusted":  # reconciliation changed a settled charge (adjust_settled)
            last_end[hold_id] = ("settled", amount)
    problems = []
    known = set()
    for h in holds:
        known.add(h["id"])
        amounts = reserves.get(h["id"], [])
        if len(amounts) != 1 or amounts[0] + raised.get(h["id"], 0) != h["estimate_micros"]:
            problems.append(f"hold {h['id']}: the audit has reserve amount(s) {amounts}, the hold's estimate is "
                            f"{h['estimate_micros']}")
        end = last_end.get(h["id"])
        if h["state"] in OPEN_STATES:
            if end is not None:
                problems.append(f"hold {h['id']} is {h['state']} but the audit says it was {end[0]}")
        elif end is None or end[0] != h["state"] or end[1] != h["actual_micros"]:
            problems.append(f"hold {h['id']} is {h['state']} at {h['actual_micros']} but the audit's last word is "
                            f"{end[0] + ' at ' + str(end[1]) if end else 'nothing'}")
    for hold_id in sorted((set(reserves) | set(raised) | set(last_end)) - known):
        problems.append(f"the audit names hold {hold_id}, which does not exist")
    return problems


@dataclass(frozen=True)
class BooksCheck:
    """What ``check_books`` compared and every difference it found (none: the books agree)."""

    holds: int
    totals: int
    differences: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.differences


# -- helpers -----------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    """SHA-256 of a token: tokens are 256 random bits, so a fast hash is as strong as a slow one."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_account_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_.@" for c in name):
        raise UserError(f"'{name}' is not a usable account name: use 1–64 letters, digits, '-', '_', '.' or '@'.")


MAX_MICROS = usd(Decimal("1000000"))
MAX_COUNT = 1_000_000


def validate_limits(limits: Limits) -> None:
    """Refuse negative or absurd limits with the reason (a limit above $1,000,000 is a typo)."""
    problems = []
    for name, value in (("daily", limits.daily_micros), ("monthly", limits.monthly_micros)):
        if value is not None and not 0 <= value <= MAX_MICROS:
            problems.append(f"--{name} must be a dollar amount from 0 to 1000000 (got {format_usd(value)})")
    for name, value in (("concurrent", limits.concurrent_jobs), ("hourly", limits.jobs_per_hour)):
        if value is not None and not 0 <= value <= MAX_COUNT:
            problems.append(f"--{name} must be a whole number from 0 to {MAX_COUNT} (got {value})")
    if limits.warn_at is not None and not 0 < limits.warn_at <= 1:
        problems.append(f"--warn-at must be a share above 0 and at most 1, such as 0.8 (got {limits.warn_at})")
    if problems:
        raise UserError("Invalid limit: " + "; ".join(problems) + ".")


def parse_usd(text: str, option: str) -> int:
    """A dollar amount typed by an operator ('5', '2.50', '$3') to micros, or a clear refusal."""
    try:
        value = Decimal(text.strip().lstrip("$"))
    except Exception:
        raise UserError(f"{option} takes a dollar amount such as 5 or 2.50, not '{text}'.") from None
    if not value.is_finite() or value < 0 or value > 1_000_000:
        raise UserError(f"{option} must be a dollar amount from 0 to 1000000, not '{text}'.")
    return usd(value)


def parse_count(text: str, option: str) -> int:
    """A whole number typed by an operator (a job limit) or a clear refusal naming ``option``."""
    try:
        value = int(text.strip())
    except ValueError:
        raise UserError(f"{option} takes a whole number, not '{text}'.") from None
    if not 0 <= value <= MAX_COUNT:
        raise UserError(f"{option} must be a whole number from 0 to {MAX_COUNT}, not {value}.")
    return value


def parse_share(text: str, option: str) -> float:
    """A share such as 0.8 (warn at 80 % of a budget) or a clear refusal naming ``option``."""
    try:
        value = float(text.strip())
    except ValueError:
        raise UserError(f"{option} takes a share such as 0.8, not '{text}'.") from None
    if not 0 < value <= 1:
        raise UserError(f"{option} must be above 0 and at most 1 (0.8 warns at 80 %), not {text}.")
    return value
