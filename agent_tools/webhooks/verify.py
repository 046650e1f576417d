"""Signature checks for provider callbacks (docs: fal and WaveSpeed webhook verification).

- fal: Ed25519 over ``"\\n".join([request_id, user_id, timestamp, sha256(body).hexdigest()])``,
  hex signature in ``X-Fal-Webhook-Signature``, checked against every key of fal's JWKS (keys
  rotate: cached at most 24 h, fetched again once when no key matches).
- WaveSpeed: ``webhook-signature: v3,<hex>`` = HMAC-SHA256 over ``f"{id}.{timestamp}.{body}"``
  keyed by the secret without its ``whsec_`` prefix (not base64-decoded; this is not Standard Webhooks).

Both reject a timestamp more than ``max_skew`` seconds away from now. Verification runs over the raw
request bytes, before any JSON parsing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_SKEW_SECONDS = 300
JWKS_MAX_AGE = 24 * 3600.0
JWKS_MIN_REFETCH = 60.0
"""A signature no cached key matches refetches the key set, at most this often (a forger cannot
make us fetch fal's JWKS once per request)."""


class Rejected(Exception):
    """A callback that must change nothing; ``str()`` says why (answered 4xx, never with secrets)."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.status = status


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _b64url(text: str) -> bytes:
    """A JWKS ``x``, padded or not (one write-up saw a padded ``x`` in fal's live key set)."""
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_timestamp(value: str | None, now: float, max_skew: float) -> int:
    try:
        stamp = int(value or "")
    except ValueError:
        raise Rejected("the timestamp header is missing or not a number") from None
    if abs(now - stamp) > max_skew:
        raise Rejected(f"the timestamp is {abs(now - stamp):.0f} s away from now (more than {max_skew:.0f} s)")
    return stamp


@dataclass(frozen=True)
class FalDelivery:
    request_id: str
    user_id: str
    timestamp: int
    signature: bytes


def fal_delivery(headers: Mapping[str, str], now: float, max_skew: float = MAX_SKEW_SECONDS) -> FalDelivery:
    h = lower(headers)
    try:
        rid, uid, ts, sig = (h[f"x-fal-webhook-{n}"] for n in ("request-id", "user-id", "timestamp", "signature"))
    except KeyError:
        raise Rejected("the X-Fal-Webhook-* signature headers are missing") from None
    stamp = check_timestamp(ts, now, max_skew)
    try:
        signature = bytes.fromhex(sig)
    except ValueError:
        raise Rejected("the signature is not hex") from None
    if len(signature) != 64:
        raise Rejected("the signature is not 64 bytes")
    return FalDelivery(rid, uid, stamp, signature)


def fal_message(delivery: FalDelivery, body: bytes) -> bytes:
    return "\n".join([delivery.request_id, delivery.user_id, str(delivery.timestamp),
                      hashlib.sha256(body).hexdigest()]).encode()


def fal_signed_by(delivery: FalDelivery, body: bytes, keys: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any Ed25519 key of the JWKS made this signature."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    message = fal_message(delivery, body)
    for key in keys:
        if key.get("kty") != "OKP" or key.get("crv") != "Ed25519" or not isinstance(key.get("x"), str):
            continue
        try:
            Ed25519PublicKey.from_public_bytes(_b64url(key["x"])).verify(delivery.signature, message)
            return True
        except (InvalidSignature, ValueError, binascii.Error):
            continue
    return False


class JwksCache:
    """fal's published keys, fetched on first use, kept at most ``max_age`` seconds, refetched once
    (rate-limited) when no cached key matches a signature."""

    def __init__(self, fetch: Callable[[], Awaitable[Sequence[Mapping[str, Any]]]], *,
                 clock: Callable[[], float] = time.time, max_age: float = JWKS_MAX_AGE) -> None:
        self._fetch = fetch
        self.clock = clock
        self.max_age = max_age
        self._keys: Sequence[Mapping[str, Any]] = ()
        self._fetched_at: float | None = None
        self.fetches = 0

    async def keys(self, *, fresh: bool = False) -> Sequence[Mapping[str, Any]]:
        now = self.clock()
        stale = self._fetched_at is None or now - self._fetched_at > self.max_age
        may_refetch = self._fetched_at is None or now - self._fetched_at > JWKS_MIN_REFETCH
        if stale or (fresh and may_refetch):
            self._keys = tuple(await self._fetch())
            self._fetched_at = now
            self.fetches += 1
        return self._keys

    async def verify(self, delivery: FalDelivery, body: bytes) -> bool:
        if fal_signed_by(delivery, body, await self.keys()):
            return True
        return fal_signed_by(delivery, body, await self.keys(fresh=True))  # keys rotate


@dataclass(frozen=True)
class WaveSpeedDelivery:
    id: str
    timestamp: int
    signatures: tuple[str, ...]


def wavespeed_delivery(headers: Mapping[str, str], now: float,
                       max_skew: float = MAX_SKEW_SECONDS) -> WaveSpeedDelivery:
    h = lower(headers)
    try:
        wid, ts, sig = h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"]
    except KeyError:
        raise Rejected("the webhook-id/-timestamp/-signature headers are missing") from None
    stamp = check_timestamp(ts, now, max_skew)
    signatures = tuple(p.removeprefix("v3,") for p in sig.split() if p.startswith("v3,"))
    if not signatures:
        raise Rejected("no v3 signature in webhook-signature")
    return WaveSpeedDelivery(wid, stamp, signatures)


def wavespeed_signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    key = secret.removeprefix("whsec_").encode()
    return hmac.new(key, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def wavespeed_signed(delivery: WaveSpeedDelivery, body: bytes, secret: str) -> bool:
    expected = wavespeed_signature(secret, delivery.id, delivery.timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in delivery.signatures)
