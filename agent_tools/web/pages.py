"""Everyone's pages: the gallery (with live cards), a job, a new generation, and usage.

Each handler reads its query or form, makes one or two Toolkit calls for the viewer's own account and
renders a template; the Toolkit decides what the account may see or pay for.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..catalog import CATALOG, OutputKind, get
from ..errors import UserError
from ..followups import ANIMATE_TOOL
from ..jobs import FINAL, Job, JobState
from ..ledger import resets_phrase
from .dashboard import Dashboard, Viewer, form_text
from .charts import day_range, stacked_spend

PAGE_SIZE = 24
CHART_DAYS = (7, 30, 90)
SPEND_GROUPS = ("model", "day", "account")


def prompt_only_models() -> list[Any]:
    """Models the gallery's quick form can start from a prompt alone (others need an image)."""
    return [spec for spec in CATALOG.values()
            if {n for n, f in spec.Input.model_fields.items() if f.is_required()} == {"prompt"}]


def card_context(dashboard: Dashboard, job: Job) -> dict[str, Any]:
    spec = CATALOG.get(job.tool)
    return {"job": job, "title": spec.title.split(" — ")[0] if spec else job.tool,
            "is_image": bool(spec and spec.output.kind is OutputKind.IMAGES), "finished": job.state in FINAL,
            "cost": job.actual_micros if job.actual_micros is not None else job.estimate_micros}


class Filters:
    """The gallery's query string, checked: a bad value is a 400 that says what was wrong."""

    def __init__(self, request: Request, tz: Any) -> None:
        query = request.query_params
        self.model = query.get("model") or ""
        self.state = query.get("state") or ""
        self.since = query.get("since") or ""
        self.until = query.get("until") or ""
        if self.model and self.model not in CATALOG:
            raise UserError(f"Unknown model '{self.model}'; pick one from the Model list.")
        if self.state and self.state not in {s.value for s in JobState}:
            raise UserError(f"Unknown state '{self.state}'; pick one from the State list.")
        self.since_ts = _day_start(self.since, "From", tz)
        until = _day_start(self.until, "To", tz, next_day=True)
        self.until_ts = until
        self.before = _cursor(query.get("before"))

    def query(self, **changes: str) -> str:
        values = {"model": self.model, "state": self.state, "since": self.since, "until": self.until, **changes}
        return urlencode({k: v for k, v in values.items() if v})


def _day_start(text: str, label: str, tz: Any, next_day: bool = False) -> float | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{label} takes a date as YYYY-MM-DD, not '{text}'.") from None
    return datetime.combine(day + timedelta(days=1 if next_day else 0), time.min, tz).timestamp()


def _cursor(text: str | None) -> tuple[float, str] | None:
    if not text:
        return None
    stamp, _, job_id = text.partition(":")
    try:
        return float(stamp), job_id
    except ValueError:
        raise UserError("That page link is broken; go back to the first page of the gallery.") from None


def routes(dashboard: Dashboard) -> list[Route]:
    toolkit = lambda: dashboard.toolkit  # noqa: E731  (opened by the lifespan, after the routes are built)

    async def gallery(request: Request, viewer: Viewer, *, problem: str | None = None, status: int = 200) -> Response:
        filters = Filters(request, toolkit().ledger.tz)
        jobs, more = await toolkit().job_page(
            viewer.account, tools=frozenset({filters.model}) if filters.model else None,
            states=frozenset({JobState(filters.state)}) if filters.state else None,
            since=filters.since_ts, until=filters.until_ts, before=filters.before, limit=PAGE_SIZE)
        older = filters.query(before=f"{more[0]!r}:{more[1]}") if more else None
        return dashboard.render(
            request, "gallery.html", viewer, status, cards=[card_context(dashboard, j) for j in jobs],
            filters=filters, older=older, first_page=filters.query() if filters.before else None,
            models=sorted(CATALOG.values(), key=lambda s: s.title), states=[s.value for s in JobState],
            quick_models=prompt_only_models(), problem=problem,
            form={"model": form_text(request.state.form, "model") if problem else "",
                  "prompt": form_text(request.state.form, "prompt") if problem else ""})

    async def card(request: Request, viewer: Viewer) -> Response:
        job = await toolkit().get_job(viewer.account, request.path_params["job_id"])
        return dashboard.render(request, "_card.html", viewer, **card_context(dashboard, job))

    async def generate(request: Request, viewer: Viewer) -> Response:
        form = request.state.form
        tool, prompt = form_text(form, "model"), form_text(form, "prompt").strip()
        try:
            if tool not in {s.tool for s in prompt_only_models()}:
                raise UserError("Choose a model from the list.")
            if not prompt:
                raise UserError("Write a prompt: what should the clip or image show?")
            job = await toolkit().generate(viewer.account, tool, {"prompt": prompt}, wait=0, allow_local_files=False,
                                           origin=dashboard.origin)
        except UserError as exc:
            return await gallery(request, viewer, problem=str(exc), status=400)
        return dashboard.redirect(request, "gallery", query=f"started={job.id}")

    async def job_page(request: Request, viewer: Viewer) -> Response:
        job = await toolkit().get_job(viewer.account, request.path_params["job_id"])
        events = await toolkit().job_events(viewer.account, job.id)
        animate = get(ANIMATE_TOOL)
        return dashboard.render(
            request, "job.html", viewer, **card_context(dashboard, job), spec=CATALOG.get(job.tool),
            quote=toolkit().quote_of(job), events=events, warnings=toolkit().warnings.get(job.id, ()),
            animate_title=animate.title.split(" — ")[0],
            animate_price=animate.default_quote(toolkit().settings.price_overrides(animate.tool)).usd,
            notice=request.query_params.get("notice"))

    async def cancel(request: Request, viewer: Viewer) -> Response:
        _, message = await toolkit().cancel_job(viewer.account, request.path_params["job_id"])
        return dashboard.redirect(request, "job", query=_notice(message), job_id=request.path_params["job_id"])

    async def reroll(request: Request, viewer: Viewer) -> Response:
        job = await toolkit().reroll(viewer.account, request.path_params["job_id"], origin=dashboard.origin)
        return dashboard.redirect(request, "job", query=_notice(f"Re-roll of job {request.path_params['job_id']}."),
                                  job_id=job.id)

    async def animate(request: Request, viewer: Viewer) -> Response:
        index = form_text(request.state.form, "index")
        job = await toolkit().animate(viewer.account, request.path_params["job_id"],
                                      int(index) if index.isdigit() else 0, origin=dashboard.origin)
        return dashboard.redirect(request, "job", query=_notice(f"Animating job {request.path_params['job_id']}."),
                                  job_id=job.id)

    async def usage(request: Request, viewer: Viewer) -> Response:
        return await spend_page(dashboard, request, viewer, all_accounts=False)

    page = dashboard.page
    return [
        Route("/", page(gallery), name="gallery"),
        Route("/generate", page(generate), methods=["POST"], name="generate"),
        Route("/jobs/{job_id:str}", page(job_page), name="job"),
        Route("/jobs/{job_id:str}/card", page(card), name="card"),
        Route("/jobs/{job_id:str}/cancel", page(cancel), methods=["POST"], name="cancel"),
        Route("/jobs/{job_id:str}/reroll", page(reroll), methods=["POST"], name="reroll"),
        Route("/jobs/{job_id:str}/animate", page(animate), methods=["POST"], name="animate"),
        Route("/usage", page(usage), name="usage"),
    ]


def _notice(text: str) -> str:
    return urlencode({"notice": text})


async def spend_page(dashboard: Dashboard, request: Request, viewer: Viewer, *, all_accounts: bool) -> Response:
    """Usage for the viewer (``/usage``) or for everyone by account (``/admin``): chart, limits, table."""
    toolkit = dashboard.toolkit
    tz = toolkit.ledger.tz
    query = request.query_params
    days = int(query["days"]) if query.get("days", "").isdigit() and int(query["days"]) in CHART_DAYS else 30
    by = query.get("by") or ("account" if all_accounts else "model")
    if by not in SPEND_GROUPS:
        raise UserError(f"Cannot group spend by '{by}'; use {', '.join(SPEND_GROUPS)}.")
    now = toolkit.ledger.clock()
    today = datetime.fromtimestamp(now, tz).date()
    first = today - timedelta(days=days - 1)
    series = await toolkit.spend_by_day(viewer.account, by="account" if all_accounts else "model", since=first,
                                        all_accounts=all_accounts)
    chart = stacked_spend(series, day_range(first, today),
                          what="Spend of every account" if all_accounts else "Your spend")
    rows = await toolkit.spend_report(viewer.account, by=by, since=first, all_accounts=all_accounts)
    limits = [] if all_accounts else [
        {"status": s, "money": s.kind in ("daily", "monthly"),
         "resets": (resets_phrase(s.resets_at, now, tz) if s.resets_at else
                    ("rolling hour" if s.kind == "hourly" else "as jobs finish"))}
        for s in await toolkit.quota_status(viewer.account)]
    return dashboard.render(
        request, "admin_usage.html" if all_accounts else "usage.html", viewer, chart=chart, rows=rows, by=by,
        groups=SPEND_GROUPS, days=days, choices=CHART_DAYS, since=first.isoformat(), limits=limits,
        totals={"jobs": sum(r.jobs for r in rows), "settled": sum(r.settled_micros for r in rows),
                "open": sum(r.open_micros for r in rows)})
