"""What a provider callback may do: wake the tracker of the job it names, nothing else.

``WebhookReceiver.handle(provider, headers, body)`` is the one route implementation; the HTTP
servers only pass the raw request to it and send back the status and JSON it returns (see
``mount.py``). Order of checks: a known provider → the signature over the raw bytes (fal: JWKS,
WaveSpeed: HMAC) with its timestamp window → never seen before (a replay of a delivery already
accepted is refused) → a JSON body naming the same request as the signed headers → the job. A
forged, stale, replayed or malformed callback is answered 4xx and changes nothing. A valid one for
an unknown or finished job is answered 200 (so the provider stops retrying) and changes nothing;
for an unfinished job it records ``woken_at`` and wakes the tracker, which then asks the provider
as it always does — the callback's body is never taken as the result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..config import WebhookSettings
from ..db import Database
from ..jobs import JobEngine
from .verify import (MAX_SKEW_SECONDS, JwksCache, Rejected, fal_delivery, lower, wavespeed_delivery,
                     wavespeed_signed)

log = logging.getLogger(__name__)

PROVIDERS = ("fal", "wavespeed")


class WebhookReceiver:
    def __init__(self, settings: WebhookSettings, db: Database, engine: JobEngine, *, jwks: JwksCache,
                 wavespeed_secret: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        self.jwks = jwks
        self._wavespeed_secret = wavespeed_secret
        self.clock = clock
        self.max_skew = float(settings.max_skew_seconds or MAX_SKEW_SECONDS)

    async def handle(self, provider: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one callback delivery."""
        try:
            return 200, await self._handle(provider, headers, body)
        except Rejected as refused:
            # A repeat of an accepted delivery is routine (a provider retrying after a slow answer);
            # anything else may be an attack or a misconfigured secret: worth a warning.
            log.log(logging.INFO if refused.status == 409 else logging.WARNING, "refused a %s webhook: %s",
                    provider if provider in PROVIDERS else "?", refused)
            return refused.status, {"error": str(refused)}

    async def _handle(self, provider: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        now = self.clock()
        if provider == "fal":
            request_id, delivery_key = await self._verify_fal(headers, body, now)
        elif provider == "wavespeed":
            request_id, delivery_key = await self._verify_wavespeed(headers, body, now)
        else:
            raise Rejected(f"no webhook route for provider '{provider[:40]}'", status=404)
        await self._first_delivery(provider, delivery_key, now)
        job = await self.engine.find_by_request(provider, request_id)
        if job is None:
            # Possibly before the submit's answer was recorded: the tracker checks at once when it is.
            self.engine.wake_request(provider, request_id)
            log.info("%s webhook for unknown request %s", provider, request_id)
            return {"ok": True, "outcome": "unknown request"}
        if job.finished:
            return {"ok": True, "outcome": f"job already {job.state.value}"}
        woken = await self.engine.wake(job.id)
        return {"ok": True, "outcome": "woken" if woken else "already woken"}

    async def _verify_fal(self, headers: Mapping[str, str], body: bytes, now: float) -> tuple[str, str]:
        delivery = fal_delivery(headers, now, self.max_skew)
        if not await self.jwks.verify(delivery, body):
            raise Rejected("the fal signature matches none of fal's published keys")
        if self.settings.fal_user_id and delivery.user_id != self.settings.fal_user_id:
            raise Rejected("the callback is for another fal user", status=403)
        payload = _json(body)
        if payload.get("request_id") != delivery.request_id:
            raise Rejected("the body's request_id is not the signed one", status=400)
        return delivery.request_id, "fal:" + delivery.signature.hex()

    async def _verify_wavespeed(self, headers: Mapping[str, str], body: bytes, now: float) -> tuple[str, str]:
        delivery = wavespeed_delivery(headers, now, self.max_skew)
        secret = await self._wavespeed_secret()
        if not secret or not wavespeed_signed(delivery, body, secret):
            raise Rejected("the WaveSpeed signature does not match the webhook secret")
        payload = _json(body)
        task_id = payload.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise Rejected("the body has no task id", status=400)
        return task_id, "wavespeed:" + hashlib.sha256(f"{delivery.id}.{delivery.timestamp}".encode()).hexdigest()

    async def _first_delivery(self, provider: str, key: str, now: float) -> None:
        """Refuse a delivery accepted before (a replay): its signature can be valid for the whole
        timestamp window, so the window is how long a key is kept (in the database, which every
        process shares)."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM webhook_seen WHERE at < ?", (now - 2 * self.max_skew,))
            cursor = await tx.execute("INSERT INTO webhook_seen(key, provider, at) VALUES (?, ?, ?)"
                                      " ON CONFLICT(key) DO NOTHING", (key, provider, now))
        if cursor.rowcount != 1:
            raise Rejected("this delivery was already received (a replay)", status=409)


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Rejected("the body is not JSON", status=400) from None
    if not isinstance(payload, dict):
        raise Rejected("the body is not a JSON object", status=400)
    return payload


__all__ = ["PROVIDERS", "Rejected", "WebhookReceiver", "lower"]
