"""Signed callbacks from the simulated providers, the way fal and WaveSpeed send them.

fal signs with an Ed25519 key generated per simulator (its JWKS, with a padded ``x`` as one live
key set was seen to have, is served at ``/fal/rest/.well-known/jwks.json``); WaveSpeed with a
``whsec_`` secret served at ``/wavespeed/api/v3/webhook/secret``. A request submitted with a
webhook URL gets its callback once it ends; ``[sim:webhook=M]`` scripts what goes wrong:

- ``lost``: never sent (the safety poll must finish the job);
- ``duplicate``: sent twice, each a fresh signed delivery (a provider retry);
- ``replay``: the same signed delivery sent twice (an attacker's replay);
- ``late``: sent ``SimSettings.webhook_late_seconds`` after the end;
- ``bad_signature``: signed with a key or secret that is not the published one;
- ``stale``: stamped ten minutes ago; ``tampered``: the body changed after signing.

Every delivery and the status it got is kept in ``sent`` for tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .jobs import Job, Phase

log = logging.getLogger(__name__)

MODES = ("lost", "duplicate", "replay", "late", "bad_signature", "stale", "tampered")
USER_ID = "sim-fal-user"
RETRIES = 2


@dataclass(frozen=True)
class Sent:
    provider: str
    request_id: str
    url: str
    status: int | None  # None: not delivered (connection failed)
    mode: str | None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()  # padded on purpose: clients must decode leniently


class CallbackSender:
    def __init__(self, core: Any) -> None:
        """``core`` is the ``SimCore`` that owns this sender (typed loosely: core imports this module)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.core = core
        self.fal_key = Ed25519PrivateKey.generate()
        self.wavespeed_secret = "whsec_" + secrets.token_urlsafe(24)
        self.sent: list[Sent] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: Any = None

    def jwks(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self.fal_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "kid": "sim-1", "use": "sig"}]}

    def schedule(self, job: Job, body: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        if job.webhook:
            task = asyncio.get_running_loop().create_task(self._deliver(job, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _deliver(self, job: Job, make_body: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        mode = job.scenario.webhook
        while job.snapshot(self.core.now()).phase is not Phase.DONE:
            await asyncio.sleep(0.01)
        if mode == "lost":
            return
        if mode == "late":
            await asyncio.sleep(self.core.settings.webhook_late_seconds)
        body = json.dumps(await make_body()).encode()
        headers = self._sign(job, body, mode)
        if mode == "tampered":
            body = body.replace(b"}", b' , "extra": 1}', 1) if body.endswith(b"}") else body + b" "
        await self._post(job, body, headers, mode)
        if mode == "duplicate":
            await self._post(job, body, self._sign(job, body, None, later=1), mode)  # a retry: signed anew
        elif mode == "replay":
            await self._post(job, body, headers, mode)

    def _sign(self, job: Job, body: bytes, mode: str | None, later: int = 0) -> dict[str, str]:
        now = int(self.core.wall_now()) - (600 if mode == "stale" else 0) + later
        if job.provider == "fal":
            message = "\n".join([job.id, USER_ID, str(now), hashlib.sha256(body).hexdigest()]).encode()
            if mode == "bad_signature":
                from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
                signature = Ed25519PrivateKey.generate().sign(message)
            else:
                signature = self.fal_key.sign(message)
            return {"Content-Type": "application/json", "X-Fal-Webhook-Request-Id": job.id,
                    "X-Fal-Webhook-User-Id": USER_ID, "X-Fal-Webhook-Timestamp": str(now),
                    "X-Fal-Webhook-Signature": signature.hex()}
        delivery = "msg_" + secrets.token_hex(8)
        secret = "whsec_wrong" if mode == "bad_signature" else self.wavespeed_secret
        digest = hmac.new(secret.removeprefix("whsec_").encode(), f"{delivery}.{now}.".encode() + body,
                          hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "webhook-id": delivery, "webhook-timestamp": str(now),
                "webhook-signature": f"v3,{digest}"}

    async def _post(self, job: Job, body: bytes, headers: dict[str, str], mode: str | None) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        status: int | None = None
        for attempt in range(RETRIES + 1):
            try:
                async with self._session.post(job.webhook, data=body, headers=headers) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.info("callback for %s to %s failed: %s", job.id, job.webhook, exc)
                status = None
            if status is not None and status < 500:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        self.core.stats.routes[f"{job.provider}.callback"] += 1
        self.sent.append(Sent(job.provider, job.id, str(job.webhook), status, mode))
