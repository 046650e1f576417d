"""State shared by the simulator's routes: jobs, files, counters, the clock and the rules for keys.

Kept apart from the route modules so ``fal.py`` and ``wavespeed.py`` only translate between their
provider's wire format and these records.
"""

from __future__ import annotations

import collections
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from decimal import Decimal
from typing import Any

from aiohttp import web

from .callbacks import CallbackSender
from .uploads import SIGNATURE_PARAM, Upload, UploadStore
from .jobs import Job
from .media import MediaSpec, MediaStore, caption
from .scenarios import SimSettings, strip_markers

ROUTE = web.RequestKey("sim_route", str)
"""Which simulated route answered a request: the name ``SimStats.routes`` counts it under."""


@dataclass
class SimStats:
    """Counters for benchmarks ("how many HTTP requests does one job cost?").

    ``routes`` is keyed by route name (``fal.submit``, ``fal.status``, ``fal.result``,
    ``fal.cancel``, ``wavespeed.submit``, ``wavespeed.prediction``, ``files.get``, ``upload.put``…),
    ``submits`` by provider (accepted submits only), ``responses`` by HTTP status.
    """

    requests: int = 0
    routes: collections.Counter[str] = field(default_factory=collections.Counter)
    submits: collections.Counter[str] = field(default_factory=collections.Counter)
    responses: collections.Counter[int] = field(default_factory=collections.Counter)
    media_renders: int = 0

    @property
    def total_submits(self) -> int:
        return sum(self.submits.values())

    def requests_per_job(self) -> float:
        """HTTP requests per accepted submit (0 when nothing was submitted)."""
        return self.requests / self.total_submits if self.total_submits else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "routes": dict(self.routes), "submits": dict(self.submits),
                "responses": {str(k): v for k, v in self.responses.items()}, "media_renders": self.media_renders,
                "requests_per_job": round(self.requests_per_job(), 3)}

    def reset(self) -> None:
        self.requests = 0
        self.routes.clear()
        self.submits.clear()
        self.responses.clear()
        self.media_renders = 0


@dataclass
class BillingScript:
    """How the simulated bills differ from the list price (``core.billing``; see ``billing.py``)."""

    multipliers: dict[str, Decimal] = field(default_factory=dict)
    """Endpoint (or WaveSpeed model) id → factor on the list price, e.g. ``Decimal("1.25")``."""
    overrides: dict[str, int] = field(default_factory=dict)
    """Request id → micro-dollars billed, whatever the price."""
    missing: set[str] = field(default_factory=set)
    """Request ids that have no billing event (yet)."""


class KeyVerdict:
    OK = "ok"
    MISSING = "missing"
    BAD = "bad"
    BROKE = "broke"


class SimCore:
    def __init__(self, settings: SimSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.media = MediaStore(settings.media_cache_entries)
        self.uploads = UploadStore()
        self.stats = SimStats()
        self.rng = random.Random(settings.random_seed)
        self.base_url = ""
        self.billing = BillingScript()
        self.callbacks = CallbackSender(self)
        """Signs and sends the providers' callbacks (fal Ed25519 + JWKS, WaveSpeed HMAC)."""
        """What the simulated providers bill, and how it differs from the list price (see billing.py)."""
        self._recent_submits: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    def now(self) -> float:
        return self.clock()

    @staticmethod
    def wall_now() -> float:
        return time.time()

    def add_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.stats.submits[job.provider] += 1
        if len(self.jobs) % 1000 == 0:
            self.forget_old_jobs()

    def forget_old_jobs(self) -> None:
        """Drop requests finished longer than ``result_retention_seconds`` ago, as fal expires results.

        Keeps a long-running demo server's memory flat; their ids then answer 404 like expired ones.
        """
        now = self.now()
        horizon = now - self.settings.result_retention_seconds
        expired = [job.id for job in self.jobs.values()
                   if (end := job.snapshot(now).finished_at) is not None and end < horizon]
        for job_id in expired:
            del self.jobs[job_id]

    def output_kind(self, endpoint_id: str) -> str | None:
        """"video" or "images" for an endpoint; None if unknown and ``known_endpoints_only``."""
        kind = _catalog_kinds().get(endpoint_id)
        if kind is None and not self.settings.known_endpoints_only:
            lowered = endpoint_id.lower()
            kind = "images" if "image" in lowered and "video" not in lowered else "video"
        return kind

    # -- keys and limits ----------------------------------------------------------------------
    def judge_key(self, key: str | None) -> str:
        """How the simulated account behind ``key`` fares: ok, missing, bad (401) or broke."""
        if not key:
            return KeyVerdict.MISSING
        lowered = key.lower()
        if lowered.startswith("bad"):
            return KeyVerdict.BAD
        if lowered.startswith("broke"):
            return KeyVerdict.BROKE
        if self.settings.api_keys is not None and key not in self.settings.api_keys:
            return KeyVerdict.BAD
        return KeyVerdict.OK

    def submit_rate_limited(self, provider: str) -> bool:
        """Sliding 1 s window per provider, when ``max_submits_per_second`` is set."""
        limit = self.settings.max_submits_per_second
        if limit is None:
            return False
        now = self.now()
        window = self._recent_submits[provider]
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            return True
        window.append(now)
        return False

    # -- ids and seeds ------------------------------------------------------------------------
    def new_prediction_id(self) -> str:
        return uuid.uuid4().hex

    def new_seed(self, requested: object) -> int:
        if isinstance(requested, int) and not isinstance(requested, bool):
            return requested
        return self.rng.randrange(1, 2**31)

    # -- outputs --------------------------------------------------------------------------------
    def upload_url(self, upload: Upload) -> str:
        """The presigned-style URL a client PUTs the bytes of ``upload`` to."""
        return f"{self.base_url}/upload/{upload.token}?{SIGNATURE_PARAM}={upload.signature}"

    def file_url(self, token: str, name: str) -> str:
        return f"{self.base_url}/files/{token}/{name}"

    def output_spec(self, job: Job, width: int | None = None, height: int | None = None) -> MediaSpec:
        text = caption(strip_markers(str(job.input.get("prompt") or "")))
        if job.output_kind == "images":
            return MediaSpec("image", text, width or 1024, height or 1024)
        return MediaSpec("video", text)

    def output_url(self, spec: MediaSpec, name: str) -> str:
        return self.file_url(self.media.register(spec), name)

    async def output_size(self, spec: MediaSpec) -> int:
        data = await self.media.get(self.media.register(spec))
        self.stats.media_renders = self.media.renders
        return len(data or b"")


@lru_cache(maxsize=1)
def _catalog_kinds() -> dict[str, str]:
    from ..catalog import CATALOG  # imported late: the catalog pulls in pydantic models

    return {spec.endpoint_id: str(spec.output.kind) for spec in CATALOG.values()}


def new_request_id() -> str:
    return str(uuid.uuid4())


def new_token() -> str:
    return secrets.token_urlsafe(18)


