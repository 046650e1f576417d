"""Reconciliation: what users were charged beside what the providers billed (``videogen reconcile``).

A settled job's charge is the catalog's estimate. fal reports what it billed per request (its
billing-events API, admin key), so each settled fal job gets the provider's figure recorded beside
the user's charge (``provider_charges``), and ``apply`` sets the user's charge to it through the
ledger (``Ledger.adjust_settled``: audited, never below zero, running totals kept in the same
transaction, so ``videogen books check`` stays clean). WaveSpeed reports billing per account only,
so its jobs are compared per UTC day and model against its usage report (``provider_usage``) and
never adjusted one by one. Days are UTC, as the providers' reports are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .db import Database
from .ledger import Ledger
from .money import format_usd
from .providers.billing import FAL_ADMIN_KEY_NEEDED, FalBilling, WaveSpeedUsage

DEFAULT_DAYS = 7


@dataclass
class Group:
    """One provider, model and UTC day: the user charges and the provider's figure (None: unknown)."""

    day: str
    provider: str
    model: str
    jobs: int = 0
    charged_micros: int = 0
    billed_micros: int | None = None
    unbilled_jobs: int = 0
    """fal jobs without a billing event (not billed, or fal's events have not caught up yet)."""

    @property
    def difference_micros(self) -> int | None:
        """Billed minus charged: positive when the operator paid more than users were charged."""
        return None if self.billed_micros is None else self.billed_micros - self.charged_micros

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day, "provider": self.provider, "model": self.model, "jobs": self.jobs,
                "charged_micros": self.charged_micros, "billed_micros": self.billed_micros,
                "difference_micros": self.difference_micros, "unbilled_jobs": self.unbilled_jobs}


@dataclass(frozen=True)
class Adjustment:
    job_id: str
    hold_id: str
    old_micros: int
    new_micros: int


@dataclass
class Report:
    since: date
    groups: list[Group] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)
    applied: bool = False

    @property
    def differences(self) -> list[Group]:
        return [g for g in self.groups if g.difference_micros]

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "applied": self.applied,
                "groups": [g.as_dict() for g in self.groups], "notes": self.notes,
                "adjustments": [a.__dict__ for a in self.adjustments]}


@dataclass(frozen=True)
class _Charge:
    job_id: str
    provider: str
    tool: str
    endpoint_id: str
    request_id: str
    hold_id: str
    created_at: float
    charged_micros: int

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.created_at, UTC).date().isoformat()


def default_since(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).date() - timedelta(days=DEFAULT_DAYS)


async def reconcile(db: Database, ledger: Ledger, *, since: date, now: float, fal: FalBilling | None,
                    wavespeed: WaveSpeedUsage | None, apply: bool = False, actor: str = "") -> Report:
    """Compare every settled job created on or after ``since`` (UTC) with the provider's bill;
    with ``apply``, set each fal job's charge to what fal billed for it."""
    start = datetime.combine(since, datetime.min.time(), UTC).timestamp()
    rows = await db.fetchall(
        "SELECT j.id, j.provider, j.tool, j.endpoint_id, j.request_id, h.id AS hold_id, j.created_at,"
        " h.actual_micros FROM jobs j JOIN holds h ON h.id = j.hold_id"
        " WHERE h.state = 'settled' AND j.request_id IS NOT NULL AND j.created_at >= ? ORDER BY j.created_at",
        (start,))
    charges = [_Charge(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or 0) for r in rows]
    report = Report(since, applied=apply)
    await _fal(db, ledger, report, [c for c in charges if c.provider == "fal"], fal, now, apply, actor)
    await _wavespeed(db, report, [c for c in charges if c.provider == "wavespeed"], wavespeed, now)
    report.groups.sort(key=lambda g: (g.day, g.provider, g.model))
    return report


async def _fal(db: Database, ledger: Ledger, report: Report, charges: Sequence[_Charge], client: FalBilling | None,
               now: float, apply: bool, actor: str) -> None:
    if not charges:
        return
    billed: dict[str, int] | None = None
    if client is None:
        report.notes.append(f"{len(charges)} fal job(s) not compared: " + FAL_ADMIN_KEY_NEEDED)
    else:
        billed = await client.billed([(c.request_id, c.created_at) for c in charges])
    groups: dict[tuple[str, str], Group] = {}
    for c in charges:
        group = groups.setdefault((c.day, c.tool), Group(c.day, "fal", c.tool, billed_micros=None if billed is None else 0))
        group.jobs += 1
        group.charged_micros += c.charged_micros
        if billed is None:
            continue
        if c.request_id not in billed:
            group.unbilled_jobs += 1
            continue
        group.billed_micros = (group.billed_micros or 0) + billed[c.request_id]
    report.groups.extend(groups.values())
    if billed is None:
        return
    unbilled = sum(g.unbilled_jobs for g in groups.values())
    if unbilled:
        report.notes.append(f"{unbilled} fal job(s) have no billing event yet (fal's events can lag); they count "
                            "as billed $0.00 and are not adjusted.")
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO provider_charges(job_id, provider, request_id, charged_micros, billed_micros, checked_at)"
            " VALUES (?, 'fal', ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET charged_micros = excluded.charged_micros,"
            " billed_micros = excluded.billed_micros, checked_at = excluded.checked_at",
            [(c.job_id, c.request_id, c.charged_micros, billed[c.request_id], now)
             for c in charges if c.request_id in billed])
    if not apply:
        return
    for c in charges:
        new = billed.get(c.request_id)
        if new is None or new == c.charged_micros:
            continue
        async with db.transaction() as tx:
            old = await ledger.adjust_settled(
                c.hold_id, new, actor=actor,
                detail=f"reconciled with fal's bill for request {c.request_id}: {format_usd(new)}", tx=tx)
            if old is None:
                continue
            await tx.execute("UPDATE jobs SET actual_micros = ? WHERE id = ?", (new, c.job_id))
            await tx.execute("UPDATE provider_charges SET applied_at = ? WHERE job_id = ?", (now, c.job_id))
        report.adjustments.append(Adjustment(c.job_id, c.hold_id, old, new))


async def _wavespeed(db: Database, report: Report, charges: Sequence[_Charge], client: WaveSpeedUsage | None,
                     now: float) -> None:
    if not charges:
        return
    groups: dict[tuple[str, str], Group] = {}
    for c in charges:
        group = groups.setdefault((c.day, c.endpoint_id), Group(c.day, "wavespeed", c.endpoint_id))
        group.jobs += 1
        group.charged_micros += c.charged_micros
    report.groups.extend(groups.values())
    if client is None:
        report.notes.append(f"{len(charges)} WaveSpeed job(s) not compared: no WaveSpeed API key is configured "
                            "(WAVESPEED_API_KEY or [wavespeed] key).")
        return
    requests: dict[tuple[str, str], int] = {}
    for day in sorted({g.day for g in groups.values()}):
        usage = await client.usage(date.fromisoformat(day))
        for (group_day, model), group in groups.items():
            if group_day == day:
                requests[(day, model)], group.billed_micros = usage.get(model, (0, 0))
    report.notes.append("WaveSpeed bills per account: its figures are per UTC day and model and include any "
                        "use of the same key outside videogen; they are compared, never applied to single jobs.")
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO provider_usage(provider, day, model, jobs, charged_micros, requests, billed_micros, checked_at)"
            " VALUES ('wavespeed', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(provider, day, model) DO UPDATE SET"
            " jobs = excluded.jobs, charged_micros = excluded.charged_micros, requests = excluded.requests,"
            " billed_micros = excluded.billed_micros, checked_at = excluded.checked_at",
            [(g.day, g.model, g.jobs, g.charged_micros, requests[(g.day, g.model)], g.billed_micros, now)
             for g in groups.values()])
