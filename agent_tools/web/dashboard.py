"""What every dashboard page shares: the Toolkit, templates, sign-in, the guard, media.

Every request after sign-in goes through ``Dashboard.guard``: a valid signed cookie whose token is still
live, admin rights checked here for admin pages, and on POST a same-origin check plus the form's CSRF
token. A job or file of another account is answered exactly like a missing one (404).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ..errors import UserError
from ..jobs import JobNotFound
from ..ledger import hash_token
from ..money import format_usd
from ..toolkit import Account, Toolkit
from .session import LOGIN_COOKIE, LOGIN_COOKIE_SECONDS, SESSION_COOKIE, Session, Signer

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
                                "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: the account, the session that proves it, and its CSRF token."""

    account: Account
    session: Session
    csrf: str


Handler = Callable[[Request, Viewer], Awaitable[Response]]


class Dashboard:
    """Holds the Toolkit and the signer; renders templates; guards every page."""

    def __init__(self, toolkit: Toolkit | None, signer: Signer, *, origin: Mapping[str, Any] | None = None) -> None:
        self._toolkit = toolkit
        self.signer = signer
        self.origin = {"surface": "web", **(origin or {})}
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals.update(usd=format_usd)

    @property
    def toolkit(self) -> Toolkit:
        if self._toolkit is None:
            raise RuntimeError("the dashboard's Toolkit is opened by the app's lifespan; it has not started")
        return self._toolkit

    # -- rendering ----------------------------------------------------------------------------

    def when(self, ts: float | None) -> str:
        """A timestamp in the quota time zone, as people read it."""
        if ts is None:
            return ""
        return datetime.fromtimestamp(ts, self.toolkit.ledger.tz).strftime("%Y-%m-%d %H:%M")

    def render(self, request: Request, template: str, viewer: Viewer | None, code: int = 200,
               **context: Any) -> Response:
        def path(name: str, **params: Any) -> str:
            return request.url_for(name, **params).path

        response = self.templates.TemplateResponse(
            request, template, {"viewer": viewer, "path": path, "when": self.when, **context}, status_code=code)
        response.headers.update(SECURITY_HEADERS)
        return response

    def error(self, request: Request, viewer: Viewer | None, status: int, message: str) -> Response:
        return self.render(request, "error.html", viewer, status, status=status, message=message)

    def redirect(self, request: Request, name: str, query: str = "", **params: Any) -> RedirectResponse:
        """A 303 after a POST, so reloading the next page never repeats the action."""
        target = request.url_for(name, **params).path + (f"?{query}" if query else "")
        return RedirectResponse(target, status_code=303)

    # -- the guard ----------------------------------------------------------------------------

    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in account, or None: no cookie, a forged or expired one, or a revoked token."""
        session = self.signer.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        account = await self.toolkit.account_for_token_hash(session.token_hash)
        if account is None:
            return None
        return Viewer(account, session, self.signer.csrf(session.nonce))

    def page(self, handler: Handler, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: sign-in required, admin rights if asked, CSRF and origin on POST, and
        the Toolkit's refusals turned into pages (404 for someone else's job, 400 with the reason)."""
        async def endpoint(request: Request) -> Response:
            viewer = await self.viewer(request)
            if viewer is None:
                return self.signed_out(request)
            if admin and not viewer.account.is_admin:
                return self.error(request, viewer, 403, "This page is for admins only. Ask an operator to add your "
                                                        "account to [admins] accounts if you need it.")
            if request.method == "POST":
                form = await request.form()
                if not self.same_origin(request) or not self.signer.csrf_ok(viewer.session.nonce, form_text(form, "csrf")):
                    return self.error(request, viewer, 403, "This form was not sent from this dashboard page (its "
                                                            "security token is missing or stale). Reload the page "
                                                            "and try again.")
                request.state.form = form
            try:
                return await handler(request, viewer)
            except JobNotFound as exc:
                return self.error(request, viewer, 404, str(exc))
            except UserError as exc:
                return self.error(request, viewer, 400, str(exc))
        return endpoint

    def signed_out(self, request: Request) -> Response:
        """Pages send the browser to sign in (and back afterwards); anything else is a plain 401."""
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(request.url_for("login").path + "?next=" + _quote_path(request), status_code=303)
        response = Response("Sign in first (your session ended or the token was revoked).", status_code=401,
                            media_type="text/plain")
        response.delete_cookie(SESSION_COOKIE, path=cookie_path(request))
        return response

    @staticmethod
    def same_origin(request: Request) -> bool:
        """A POST whose ``Origin`` names another site is refused (SameSite=Strict is the second line)."""
        origin = request.headers.get("origin")
        if origin is None:
            return True  # older clients; the CSRF token still has to match
        parts = urlsplit(origin)
        return parts.netloc == request.url.netloc and parts.scheme == request.url.scheme

    # -- sign-in ------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        if viewer is not None:
            return RedirectResponse(request.url_for("gallery").path, status_code=303)
        return self._login_page(request, None, 200)

    def _login_page(self, request: Request, problem: str | None, status: int) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or _new_nonce()
        response = self.render(request, "login.html", None, status, csrf=self.signer.csrf(nonce), problem=problem,
                               next=_safe_next(request.query_params.get("next")))
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_COOKIE_SECONDS, path=cookie_path(request),
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not self.same_origin(request) or not self.signer.csrf_ok(request.cookies.get(LOGIN_COOKIE),
                                                                  form_text(form, "csrf")):
            return self._login_page(request, "The sign-in form expired; it has been renewed, please try again.", 403)
        token = form_text(form, "token").strip()
        account = await self.toolkit.account_for_token(token) if token else None
        if account is None:
            return self._login_page(request, "That token is not valid (unknown or revoked). An operator creates "
                                             "one with `videogen accounts token ACCOUNT`.", 401)
        target = _safe_next(form_text(form, "next")) or ""
        response = RedirectResponse(cookie_path(request).rstrip("/") + target if target
                                    else request.url_for("gallery").path, status_code=303)
        response.set_cookie(SESSION_COOKIE, self.signer.issue(hash_token(token)), max_age=self.signer.max_age,
                            path=cookie_path(request), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        response.delete_cookie(LOGIN_COOKIE, path=cookie_path(request))
        return response

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        response = RedirectResponse(request.url_for("login").path, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=cookie_path(request))
        return response

    # -- media --------------------------------------------------------------------------------

    async def media(self, request: Request, viewer: Viewer) -> Response:
        """An output file of one of the viewer's jobs, with its content type and Range support."""
        job_id, index = request.path_params["job_id"], request.path_params["index"]
        path, content_type = await self.toolkit.output_file(viewer.account, job_id, index)
        download = request.query_params.get("download") == "1"
        response = FileResponse(path, media_type=content_type, filename=path.name if download else None,
                                content_disposition_type="attachment" if download else "inline")
        response.headers.update({"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
        return response


def cookie_path(request: Request) -> str:
    """Cookies belong to the dashboard's own prefix (``/dashboard`` beside ``/mcp``, else ``/``)."""
    return request.scope.get("root_path") or "/"


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _new_nonce() -> str:
    return secrets.token_urlsafe(16)


def _quote_path(request: Request) -> str:
    inner = request.url.path.removeprefix(request.scope.get("root_path") or "")
    return quote(inner + (f"?{request.url.query}" if request.url.query else ""), safe="")


def _safe_next(value: str | None) -> str | None:
    """Only a path inside the dashboard may follow sign-in (never ``//evil.example``)."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) < 33 or ord(c) == 127 for c in value)):  # browsers drop tabs: "/\t/x" is "//x"
        return None
    return value
