"""Signed session cookies and CSRF tokens for the dashboard, with nothing stored server-side.

A session cookie is ``<token hash>.<expiry>.<nonce>.<HMAC>``: it names the account *token* it was
opened with (by its hash, as the database stores it — never the token), so every request checks that
the token is still live and revoking a token ends its sessions at the next click. The HMAC (stdlib
``hmac``, SHA-256, a server secret) makes the cookie unforgeable; the expiry makes it end by itself.
The CSRF token of a form is an HMAC of the session's nonce, so it needs no storage either; before
sign-in, a short-lived ``login`` cookie carries the nonce the sign-in form's CSRF token is made from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_COOKIE = "vg_session"
LOGIN_COOKIE = "vg_login"
LOGIN_COOKIE_SECONDS = 3600


@dataclass(frozen=True)
class Session:
    token_hash: str
    expires_at: int
    nonce: str


class Signer:
    """Issues and checks session cookies and CSRF tokens with one secret."""

    def __init__(self, secret: bytes | None = None, *, max_age: float = 12 * 3600,
                 clock: Callable[[], float] = time.time) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.max_age = int(max_age)
        self.clock = clock

    def _mac(self, text: str) -> str:
        digest = hmac.new(self.secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, token_hash: str) -> str:
        """A new cookie value for a sign-in with the token of this hash (a new nonce each time)."""
        payload = f"{token_hash}.{int(self.clock()) + self.max_age}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._mac('session:' + payload)}"

    def read(self, value: str | None) -> Session | None:
        """The session a cookie proves, or None if it is malformed, forged or expired."""
        if not value or value.count(".") != 3:
            return None
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac("session:" + payload)):
            return None
        token_hash, expires, nonce = payload.split(".")
        if not expires.isdigit() or int(expires) <= self.clock():
            return None
        return Session(token_hash, int(expires), nonce)

    def csrf(self, nonce: str) -> str:
        """The CSRF token forms carry for the session (or sign-in form) with this nonce."""
        return self._mac("csrf:" + nonce)

    def csrf_ok(self, nonce: str | None, given: str | None) -> bool:
        return bool(nonce and given) and hmac.compare_digest(self.csrf(nonce or ""), given or "")
