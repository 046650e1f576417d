"""What the providers say they billed: fal per request, WaveSpeed per day and model.

- fal: ``GET {api}/v1/models/billing-events`` with ``request_id`` (a comma-separated batch),
  ``start``/``end`` (ISO 8601, a range of at most 90 days), ``limit`` and ``cursor``; it answers
  ``{"billing_events": [{"request_id", "endpoint_id", "timestamp", "cost_estimate_nano_usd", …}],
  "has_more", "next_cursor"}`` and needs an ADMIN-scope key (an inference key is refused).
- WaveSpeed: ``GET {base}/api/v3/account/usage?start_date=D&end_date=D`` answers the envelope with
  ``{"period", "total_requests", "total_cost", "by_model": [{"model", "requests", "cost"}]}`` (USD),
  with the ordinary API key. It has no per-request figure, so jobs are compared per day and model.

Used only by ``reconcile.py`` (``videogen reconcile``); the request path never waits on billing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from pydantic import SecretStr

from ..money import usd
from .errors import AuthenticationFailed, Transient, UnknownProviderError
from .http import KeyedClient, RetryPolicy, excerpt, json_body, retry_any_transport, retry_idempotent

FAL_ADMIN_KEY_SETTING = "FAL_ADMIN_KEY (or admin_key under [fal] in the config file)"
FAL_ADMIN_KEY_NEEDED = (
    "fal's billing API needs a fal ADMIN-scope API key (fal dashboard → API keys → scope ADMIN): set "
    f"{FAL_ADMIN_KEY_SETTING}. The inference key FAL_KEY cannot read billing events.")
BATCH_SIZE = 50
"""Request ids per billing-events call: a comma-separated list in one query string."""
MAX_RANGE = timedelta(days=89)
"""fal caps a billing-events range at 90 days; a batch spans less, with a day of margin."""
PAGE_LIMIT = 100


def nano_to_micros(value: Any) -> int | None:
    """fal's ``cost_estimate_nano_usd`` (an integer, or a numeric string) to micro-dollars, rounded."""
    try:
        nano = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not nano.is_finite() or nano < 0:
        return None
    return int((nano / 1000).to_integral_value())


def usd_to_micros(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return usd(amount) if amount.is_finite() and amount >= 0 else None


def batches(requests: Sequence[tuple[str, float]], size: int = BATCH_SIZE) -> list[list[tuple[str, float]]]:
    """(request id, created_at) pairs in batches of at most ``size`` spanning less than 90 days."""
    result: list[list[tuple[str, float]]] = []
    for item in sorted(requests, key=lambda r: r[1]):
        current = result[-1] if result else None
        if current is None or len(current) >= size or item[1] - current[0][1] > MAX_RANGE.total_seconds():
            result.append([item])
        else:
            current.append(item)
    return result


class FalBilling(KeyedClient):
    """fal's billing-events API with an admin key."""

    provider = label = "fal"
    submit_maybe = ""

    def __init__(self, admin_key: SecretStr | str, api_url: str = "https://api.fal.ai",
                 client: httpx.AsyncClient | None = None, *, retry: RetryPolicy | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        super().__init__(admin_key, scheme="Key", key_setting=FAL_ADMIN_KEY_SETTING, client=client, retry=retry)
        self.api_url = api_url.rstrip("/")
        self.batch_size = batch_size
        self.calls = 0

    async def billed(self, requests: Sequence[tuple[str, float]]) -> dict[str, int]:
        """Request id → micro-dollars fal billed for it; a request without a billing event is absent
        (not billed, or not yet: fal's events can lag)."""
        billed: dict[str, int] = {}
        for batch in batches(requests, self.batch_size):
            start = datetime.fromtimestamp(batch[0][1], UTC) - timedelta(hours=1)
            end = datetime.fromtimestamp(batch[-1][1], UTC) + timedelta(days=1)
            wanted = {rid for rid, _ in batch}
            cursor: str | None = None
            seen_cursors: set[str] = set()
            while True:
                params = {"request_id": ",".join(rid for rid, _ in batch), "start": _iso(start), "end": _iso(end),
                          "limit": str(PAGE_LIMIT), **({"cursor": cursor} if cursor else {})}
                body = await self._page(params)
                for event in body.get("billing_events") or ():
                    if not isinstance(event, dict) or event.get("request_id") not in wanted:
                        continue
                    micros = nano_to_micros(event.get("cost_estimate_nano_usd"))
                    if micros is None:
                        micros = usd_to_micros(event.get("cost_total"))
                    if micros is not None:  # several events for one request (several outputs) add up
                        billed[event["request_id"]] = billed.get(event["request_id"], 0) + micros
                cursor = body.get("next_cursor") if body.get("has_more") else None
                if not isinstance(cursor, str) or not cursor or cursor in seen_cursors:
                    break
                seen_cursors.add(cursor)
        return billed

    async def _page(self, params: dict[str, str]) -> dict[str, Any]:
        self.calls += 1
        response = await self._send("GET", f"{self.api_url}/v1/models/billing-events", what="billing",
                                    retry_response=retry_idempotent, retry_error=retry_any_transport, params=params)
        if response.status_code in (401, 403):
            raise AuthenticationFailed(f"fal refused the key in {FAL_ADMIN_KEY_SETTING} for its billing API "
                                       f"(HTTP {response.status_code}). " + FAL_ADMIN_KEY_NEEDED, provider="fal",
                                       status_code=response.status_code)
        body = json_body(response)
        if not response.is_success or not isinstance(body, dict):
            raise Transient(f"fal's billing API answered HTTP {response.status_code} "
                            f"({excerpt(response.text, 120)}); try again later.", provider="fal",
                            status_code=response.status_code)
        return body


class WaveSpeedUsage(KeyedClient):
    """WaveSpeed's account usage per model, with the ordinary API key."""

    provider = "wavespeed"
    label = "WaveSpeed"
    submit_maybe = ""

    def __init__(self, key: SecretStr | str, base_url: str = "https://api.wavespeed.ai",
                 client: httpx.AsyncClient | None = None, *, retry: RetryPolicy | None = None) -> None:
        super().__init__(key, scheme="Bearer", key_setting="WAVESPEED_API_KEY (or key under [wavespeed])",
                         client=client, retry=retry)
        self.base_url = base_url.rstrip("/")
        self.calls = 0

    async def usage(self, day: date) -> dict[str, tuple[int, int]]:
        """Model id → (requests, micro-dollars) WaveSpeed billed on ``day`` (UTC)."""
        self.calls += 1
        response = await self._send("GET", f"{self.base_url}/api/v3/account/usage", what="usage",
                                    retry_response=retry_idempotent, retry_error=retry_any_transport,
                                    params={"start_date": day.isoformat(), "end_date": day.isoformat()})
        body = json_body(response)
        if response.status_code in (401, 403):
            raise AuthenticationFailed(f"WaveSpeed refused the API key for its usage report (HTTP "
                                       f"{response.status_code}).", provider="wavespeed")
        data = body.get("data") if isinstance(body, dict) and body.get("code") == 200 else None
        if not response.is_success or not isinstance(data, dict):
            raise Transient(f"WaveSpeed's usage API answered HTTP {response.status_code}; try again later.",
                            provider="wavespeed", status_code=response.status_code)
        result: dict[str, tuple[int, int]] = {}
        for row in data.get("by_model") or ():
            micros = usd_to_micros(row.get("cost")) if isinstance(row, dict) else None
            requests = row.get("requests") if isinstance(row, dict) else None
            if micros is None or not isinstance(row.get("model"), str) or not isinstance(requests, int):
                raise UnknownProviderError("WaveSpeed's usage report has a by_model row without model, requests "
                                           "and cost; it cannot be compared.", provider="wavespeed")
            result[row["model"]] = (requests, micros)
        return result


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
