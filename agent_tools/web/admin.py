"""Admin pages: everyone's spend, limits per scope, open holds, accounts and tokens, the audit log.

Every route is wrapped with ``Dashboard.page(admin=True)`` (rights checked on the server for each
request), and every change goes through the Toolkit's admin methods, which check again and audit it.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import UserError
from ..ledger import SCOPES, Limits, parse_count, parse_share, parse_usd
from ..money import format_usd
from .dashboard import Dashboard, Viewer, form_text
from .pages import spend_page

AUDIT_PAGE = 50
LIMIT_FIELDS = (("daily", "Daily budget (USD)"), ("monthly", "Monthly budget (USD)"),
                ("concurrent", "Jobs at once"), ("hourly", "Jobs per hour"), ("warn_at", "Warn at share (0.8)"))


def limits_from_form(form: dict[str, str]) -> Limits:
    """The quota form's fields as ``Limits``; blank fields keep the stored value (like the CLI)."""
    def given(name: str) -> str | None:
        value = (form.get(name) or "").strip()
        return value or None

    limits = Limits(
        daily_micros=None if given("daily") is None else parse_usd(given("daily") or "", "Daily budget"),
        monthly_micros=None if given("monthly") is None else parse_usd(given("monthly") or "", "Monthly budget"),
        concurrent_jobs=None if given("concurrent") is None else parse_count(given("concurrent") or "", "Jobs at once"),
        jobs_per_hour=None if given("hourly") is None else parse_count(given("hourly") or "", "Jobs per hour"),
        warn_at=None if given("warn_at") is None else parse_share(given("warn_at") or "", "Warn at"))
    if limits.empty:
        raise UserError("Fill in at least one limit to change (blank fields keep their current value).")
    return limits


def routes(dashboard: Dashboard) -> list[Route]:
    def fields(request: Request, *names: str) -> dict[str, str]:
        return {name: form_text(request.state.form, name) for name in names}

    async def overview(request: Request, viewer: Viewer) -> Response:
        return await spend_page(dashboard, request, viewer, all_accounts=True)

    async def limits_page(request: Request, viewer: Viewer, *, problem: str | None = None, status: int = 200,
                          notice: str | None = None) -> Response:
        toolkit = dashboard.toolkit
        return dashboard.render(
            request, "admin_limits.html", viewer, status, overrides=await toolkit.limit_overrides(viewer.account),
            defaults=toolkit.ledger.defaults, global_defaults=toolkit.ledger.global_defaults,
            holds=await toolkit.open_holds(viewer.account), scopes=SCOPES, limit_fields=LIMIT_FIELDS,
            problem=problem, notice=notice or request.query_params.get("notice"),
            accounts=[a["name"] for a in await toolkit.list_accounts(viewer.account)])

    async def set_limits(request: Request, viewer: Viewer) -> Response:
        form = fields(request, "scope", "scope_id", *(name for name, _ in LIMIT_FIELDS))
        scope = form["scope"]
        scope_id = "" if scope == "global" else form["scope_id"].strip()
        try:
            if scope != "global" and not scope_id:
                raise UserError(f"Name the {scope or 'scope'} whose limits change (an account name, or a Discord "
                                "role or guild id).")
            merged = await dashboard.toolkit.set_limits(viewer.account, scope, scope_id, limits_from_form(form))
        except UserError as exc:
            return await limits_page(request, viewer, problem=str(exc), status=400)
        return dashboard.redirect(request, "admin_limits", query="notice=" + _words(
            f"Limits of {scope} {scope_id}".strip() + f" saved: {_describe(merged)}."))

    async def resolve_hold(request: Request, viewer: Viewer) -> Response:
        hold_id, action = request.path_params["hold_id"], request.path_params["action"]
        charge = None
        if action == "settle":
            charge = parse_usd(form_text(request.state.form, "usd") or "0", "The amount billed")
        elif action != "release":
            raise UserError("A hold can be settled or released.")
        changed = await dashboard.toolkit.resolve_hold(viewer.account, hold_id, charge_micros=charge)
        message = f"Hold {hold_id} {action + 'd' if changed else 'was already settled or released; nothing changed'}."
        return dashboard.redirect(request, "admin_limits", query="notice=" + _words(message))

    async def accounts_page(request: Request, viewer: Viewer, *, problem: str | None = None, status: int = 200,
                            created: dict[str, str] | None = None) -> Response:
        toolkit = dashboard.toolkit
        return dashboard.render(
            request, "admin_accounts.html", viewer, status, accounts=await toolkit.list_accounts(viewer.account),
            tokens=await toolkit.list_tokens(viewer.account), problem=problem, created=created,
            notice=request.query_params.get("notice"))

    async def add_account(request: Request, viewer: Viewer) -> Response:
        name = form_text(request.state.form, "name").strip()
        try:
            await dashboard.toolkit.add_account(viewer.account, name)
        except UserError as exc:
            return await accounts_page(request, viewer, problem=str(exc), status=400)
        return dashboard.redirect(request, "admin_accounts", query="notice=" + _words(f"Account '{name}' added."))

    async def create_token(request: Request, viewer: Viewer) -> Response:
        form = fields(request, "account", "label")
        try:
            token = await dashboard.toolkit.create_token(viewer.account, form["account"], label=form["label"].strip())
        except UserError as exc:
            return await accounts_page(request, viewer, problem=str(exc), status=400)
        # Shown on this response only (no redirect, never stored in clear, the page is not cached).
        return await accounts_page(request, viewer, created={"account": form["account"], "token": token})

    async def revoke_token(request: Request, viewer: Viewer) -> Response:
        changed = await dashboard.toolkit.revoke_token(viewer.account, form_text(request.state.form, "token_hash"))
        return dashboard.redirect(request, "admin_accounts", query="notice=" + _words(
            "Token revoked: its HTTP requests and dashboard sessions stop now." if changed
            else "That token was already revoked."))

    async def audit(request: Request, viewer: Viewer) -> Response:
        before = request.query_params.get("before", "")
        entries = await dashboard.toolkit.audit_log(viewer.account, before=int(before) if before.isdigit() else None,
                                                    limit=AUDIT_PAGE + 1)
        return dashboard.render(request, "admin_audit.html", viewer, entries=entries[:AUDIT_PAGE],
                                older=entries[AUDIT_PAGE - 1].seq if len(entries) > AUDIT_PAGE else None,
                                newest=not before)

    def admin(handler):  # type: ignore[no-untyped-def]
        return dashboard.page(handler, admin=True)

    return [
        Route("/admin", admin(overview), name="admin"),
        Route("/admin/limits", admin(limits_page), name="admin_limits"),
        Route("/admin/limits", admin(set_limits), methods=["POST"], name="admin_limits_post"),
        Route("/admin/holds/{hold_id:str}/{action:str}", admin(resolve_hold), methods=["POST"], name="admin_hold"),
        Route("/admin/accounts", admin(accounts_page), name="admin_accounts"),
        Route("/admin/accounts", admin(add_account), methods=["POST"], name="admin_accounts_post"),
        Route("/admin/tokens", admin(create_token), methods=["POST"], name="admin_tokens"),
        Route("/admin/tokens/revoke", admin(revoke_token), methods=["POST"], name="admin_tokens_revoke"),
        Route("/admin/audit", admin(audit), name="admin_audit"),
    ]


def _words(text: str) -> str:
    return quote(text)


def _describe(limits: Limits) -> str:
    parts = [f"daily {format_usd(limits.daily_micros)}" if limits.daily_micros is not None else "",
             f"monthly {format_usd(limits.monthly_micros)}" if limits.monthly_micros is not None else "",
             f"{limits.concurrent_jobs} at once" if limits.concurrent_jobs is not None else "",
             f"{limits.jobs_per_hour} per hour" if limits.jobs_per_hour is not None else "",
             f"warn at {limits.warn_at:g}" if limits.warn_at is not None else ""]
    return ", ".join(p for p in parts if p) or "no overrides"
