"""The providers' billing reports, simulated with scriptable discrepancies.

- fal: ``GET /fal/api/v1/models/billing-events`` (``/fal/api`` stands in for ``https://api.fal.ai``)
  with ``request_id`` (comma-separated), ``start``, ``end``, ``limit``, ``cursor``; only an admin
  key (one starting ``admin``) may read it, any other key gets 403 as an inference key does.
- WaveSpeed: ``GET /wavespeed/api/v3/account/usage?start_date&end_date`` per model (routed by
  ``wavespeed.py``).

A finished, successful request is billed its catalog list price; ``BillingScript`` (``core.billing``,
mutable while the server runs) makes the bill differ: a factor per endpoint, a figure per request,
or no event at all for a request (fal's events lag).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .core import ROUTE, KeyVerdict
from .jobs import Job, Phase
from .scenarios import Outcome

if TYPE_CHECKING:
    from .core import SimCore

ADMIN_PREFIX = "admin"


def list_price(job: Job) -> int:
    """The catalog price of the request as submitted (its default quote if the input does not validate)."""
    from ..catalog import CATALOG  # late: the catalog pulls in pydantic models

    spec = next((s for s in CATALOG.values() if s.endpoint_id == job.endpoint_id), None)
    if spec is None:
        return 0
    try:
        return spec.price(spec.validate(job.input)).micros
    except Exception:
        return spec.default_quote().micros


def billed_micros(core: SimCore, job: Job) -> int | None:
    """What the provider bills for ``job``: None when nothing (unfinished, failed, cancelled, or scripted missing)."""
    snap = job.snapshot(core.now())
    if snap.phase is not Phase.DONE or snap.cancelled or job.outcome is not Outcome.OK or job.id in core.billing.missing:
        return None
    if job.id in core.billing.overrides:
        return core.billing.overrides[job.id]
    factor = core.billing.multipliers.get(job.endpoint_id, Decimal(1))
    return int((list_price(job) * factor).to_integral_value())


def _when(text: str | None, default: float) -> float:
    if not text:
        return default
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPUnprocessableEntity(text='{"detail": "start and end must be ISO 8601"}',
                                          content_type="application/json") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


class FalBillingRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    def register(self, app: web.Application) -> None:
        app.router.add_get("/fal/api/v1/models/billing-events", self.events)

    async def events(self, request: web.Request) -> web.Response:
        request[ROUTE] = "fal.billing_events"
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Key" or self.core.judge_key(key.strip()) != KeyVerdict.OK:
            return web.json_response({"detail": "Invalid or missing API key"}, status=401)
        if not key.strip().lower().startswith(ADMIN_PREFIX):
            return web.json_response({"detail": "This endpoint requires an ADMIN-scope API key"}, status=403)
        start = _when(request.query.get("start"), 0.0)
        end = _when(request.query.get("end"), self.core.wall_now() + 1)
        if end - start > 90 * 86400:
            return web.json_response({"detail": "The date range is capped at 90 days"}, status=422)
        wanted = [r for r in request.query.get("request_id", "").split(",") if r]
        events: list[dict[str, Any]] = []
        for job in (self.core.jobs.get(r) for r in wanted) if wanted else self.core.jobs.values():
            if job is None or job.provider != "fal" or not start <= job.submitted_wall < end:
                continue
            micros = billed_micros(self.core, job)
            if micros is not None:
                stamp = dt.datetime.fromtimestamp(job.submitted_wall, dt.UTC).isoformat().replace("+00:00", "Z")
                events.append({"request_id": job.id, "endpoint_id": job.endpoint_id, "timestamp": stamp,
                               "unit_quantity": 1, "cost_estimate_nano_usd": micros * 1000})
        offset = int(request.query.get("cursor") or 0)
        limit = max(1, min(int(request.query.get("limit") or 100), 10_000))
        page = events[offset:offset + limit]
        more = offset + limit < len(events)
        return web.json_response({"billing_events": page, "has_more": more,
                                  "next_cursor": str(offset + limit) if more else None})


def wavespeed_usage(core: SimCore, start_date: str | None, end_date: str | None) -> dict[str, Any]:
    """WaveSpeed's usage report body for the UTC days ``start_date``..``end_date`` (inclusive)."""
    first = dt.date.fromisoformat(start_date) if start_date else dt.date.min
    last = dt.date.fromisoformat(end_date) if end_date else dt.date.max
    by_model: dict[str, list[int]] = {}
    for job in list(core.jobs.values()):
        day = dt.datetime.fromtimestamp(job.submitted_wall, dt.UTC).date()
        if job.provider != "wavespeed" or not first <= day <= last:
            continue
        micros = billed_micros(core, job)
        if micros is not None:
            row = by_model.setdefault(job.endpoint_id, [0, 0])
            row[0] += 1
            row[1] += micros
    return {"period": f"{start_date or ''}..{end_date or ''}",
            "total_requests": sum(r[0] for r in by_model.values()),
            "total_cost": sum(r[1] for r in by_model.values()) / 1e6,
            "by_model": [{"model": m, "requests": r[0], "cost": r[1] / 1e6} for m, r in sorted(by_model.items())]}
