"""What a simulated request will do, scripted by markers in its prompt or by ``SimSettings``.

A marker is ``[sim:NAME]`` or ``[sim:NAME=VALUE]`` anywhere in the request's ``prompt`` field (case
does not matter, several may be combined). A marker overrides the matching ``SimSettings`` default
for that one request; an unknown marker is refused at submit (fal 422, WaveSpeed 400) so a typo
never silently runs the happy path.

Outcome markers (at most one per prompt; without one, ``SimSettings.outcome``, normally ``ok``).
fal's status always ends ``COMPLETED`` and the failure shows at the result; WaveSpeed answers
HTTP 200 with envelope code 200 and ``data.status`` ``failed`` plus ``data.code``/``data.error``:

- ``[sim:ok]``: fal result 200 with the model's output; WaveSpeed ``completed`` with ``outputs``.
- ``[sim:content_policy]``: fal result 422, ``detail`` list of type ``content_policy_violation``
  (status COMPLETED without ``error``); WaveSpeed ``failed``, code 1200.
- ``[sim:invalid]``: fal result 422, ``detail`` list of type ``value_error``; WaveSpeed code 1401.
- ``[sim:detail_string]``: fal result 422 with a string ``detail``; WaveSpeed code 1400.
- ``[sim:media_error]``: fal result 422, ``detail`` list of type ``file_download_error``;
  WaveSpeed code 1402.
- ``[sim:server_error]``: fal result 500 ``{"detail", "error_type": "runner_server_error"}`` with
  header ``X-Fal-Error-Type``; ``[sim:server_error=503]`` gives 503 ``runner_scheduling_failure``.
  WaveSpeed code 5000 (``=503``: 5003).
- ``[sim:timeout]``: fal status COMPLETED with ``error``/``error_type: request_timeout``, result 504
  ``request_timeout`` + ``X-Fal-Error-Type``; WaveSpeed code 5004.
- ``[sim:user_timeout]``: never starts (fal IN_QUEUE → COMPLETED); result 504 ``request_timeout`` with
  ``X-Fal-Request-Timeout-Type: user`` (do not retry); WaveSpeed code 5004.
- ``[sim:status_error]``: fal status COMPLETED carrying ``error``/``error_type: internal_error``,
  result 500; WaveSpeed code 1403.

A cancelled fal request (``PUT …/cancel``) ends COMPLETED with result 499
``{"detail": "Request cancelled", "error_type": "client_cancelled"}``.

Timing and transport markers (combine freely with an outcome):

- ``[sim:slow=30]`` runs 30 s instead of ``SimSettings.run_seconds``.
- ``[sim:queue=3]`` starts at queue position 3; each position takes ``queue_seconds``, so it waits
  4 × ``queue_seconds`` and fal reports positions 3, 2, 1, 0 (WaveSpeed: ``created`` meanwhile).
- ``[sim:flaky=2]`` the next 2 status polls (fal status, WaveSpeed prediction GET) answer 503, then
  polls behave normally.
- ``[sim:rate_limit]`` the submit itself answers 429 (nothing is queued).
- ``[sim:webhook=M]``: how this request's callback goes wrong (``lost``, ``duplicate``, ``replay``,
  ``late``, ``bad_signature``, ``stale``, ``tampered``; see ``callbacks.py``); only when the submit
  asked for a callback.
- ``[sim:fal_refuse=R]`` / ``[sim:wavespeed_refuse=R]``: only that provider refuses the submit, so a
  failover to the other one can be scripted in one prompt. ``R`` is ``429`` (rate limited, with a
  ``Retry-After`` of 120 s, so clients stop at once), ``503`` (a gateway page without a request id:
  for fal, certainly not queued), ``500`` (an answer with a request id: it may have been queued) or
  ``locked`` (out of balance: fal 403, WaveSpeed ``wavespeed_low_balance_status``).
- ``[sim:nsfw]`` the result flags every output as NSFW (fal ``has_nsfw_concepts``, WaveSpeed
  ``has_nsfw_contents``), as the providers' safety checkers do.

fal's ``X-Fal-Request-Timeout: S`` header works too: a request that would still be queued after S
seconds ends as ``user_timeout`` at that moment.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    CONTENT_POLICY = "content_policy"
    INVALID = "invalid"
    DETAIL_STRING = "detail_string"
    MEDIA_ERROR = "media_error"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    USER_TIMEOUT = "user_timeout"
    STATUS_ERROR = "status_error"


MARKER = re.compile(r"\[sim:([A-Za-z_]+)(?:=([^\]]*))?\]", re.IGNORECASE)
VALUE_MARKERS = ("slow", "queue", "flaky")
FLAG_MARKERS = ("rate_limit", "nsfw")
REFUSE_MARKERS = {"fal_refuse": "fal", "wavespeed_refuse": "wavespeed"}
REFUSALS = ("429", "503", "500", "locked")
WEBHOOK_MODES = ("lost", "duplicate", "replay", "late", "bad_signature", "stale", "tampered")
_OUTCOMES = frozenset(o.value for o in Outcome)
KNOWN_MARKERS = (*(o.value for o in Outcome), *VALUE_MARKERS, *FLAG_MARKERS, *REFUSE_MARKERS, "webhook")


class MarkerError(ValueError):
    """A prompt carries a marker the simulator does not know, or a bad value for one."""


@dataclass(frozen=True)
class SimSettings:
    """Defaults for every simulated request; prompt markers override them per request.

    Times are seconds of wall-clock (or of the ``clock`` given to ``Simulator``). Defaults are
    small so tests run fast; an operator demo wants e.g. ``queue_seconds=2, run_seconds=8``.
    """

    queue_seconds: float = 0.2
    """Time spent per queue position: a request at position N is queued (N + 1) × this."""
    run_seconds: float = 0.3
    """Time a request is IN_PROGRESS / processing (``[sim:slow=S]``)."""
    queue_position: int = 0
    """Queue position a new request starts at (``[sim:queue=N]``)."""
    cancel_seconds: float = 0.05
    """How long a running fal request takes to stop after a cancel."""
    outcome: Outcome | str = Outcome.OK
    """Outcome of requests without an outcome marker (``[sim:ok]`` and friends)."""
    flaky_polls: int = 0
    """503 answers to the first status polls of each request (``[sim:flaky=N]``)."""
    rate_limit: bool = False
    """Answer every submit with 429 (``[sim:rate_limit]``)."""
    max_submits_per_second: float | None = None
    """Per provider: submits beyond this many in any 1 s window answer 429 (None: unlimited)."""
    failure_rate: float = 0.0
    """Chaos: this share of requests without an outcome marker gets one of ``failure_outcomes``."""
    failure_outcomes: tuple[Outcome | str, ...] = (Outcome.SERVER_ERROR,)
    random_seed: int | None = None
    """Seed for ``failure_rate`` draws and generated seeds, for reproducible runs."""
    api_keys: frozenset[str] | None = None
    """If set, only these keys authenticate (besides, ``bad…`` → 401 and ``broke…`` → no balance)."""
    wavespeed_low_balance_status: int = 402
    """HTTP status (and envelope code) of WaveSpeed's "insufficient balance" answer."""
    known_endpoints_only: bool = False
    """Refuse endpoint ids that are not in the catalog (404) instead of treating them as video."""
    result_retention_seconds: float = 3600.0
    """Finished requests are forgotten (404) this long after they end; fal keeps results about 1 h."""
    max_upload_bytes: int = 100 * 1024 * 1024
    media_cache_entries: int = 128
    log_steps: int = 10
    """fal logs: one ``step k/N`` line per 1/N of the run."""
    webhook_late_seconds: float = 1.0
    """``[sim:webhook=late]``: how long after the end the callback is sent."""
    sync_timeout_seconds: float = 30.0
    """WaveSpeed ``enable_sync_mode``: longer waits answer 504, as the real gateway does."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "failure_outcomes", tuple(Outcome(o) for o in self.failure_outcomes))
        for name in ("queue_seconds", "run_seconds", "cancel_seconds", "failure_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"SimSettings.{name} must not be negative")
        if self.queue_position < 0 or self.flaky_polls < 0:
            raise ValueError("SimSettings.queue_position and flaky_polls must not be negative")
        if self.failure_rate > 1:
            raise ValueError("SimSettings.failure_rate is a share between 0 and 1")
        if self.api_keys is not None:
            object.__setattr__(self, "api_keys", frozenset(self.api_keys))


@dataclass(frozen=True)
class Scenario:
    """The script of one request, fixed at submit."""

    outcome: Outcome
    run_seconds: float
    queue_position: int
    flaky_polls: int
    rate_limit: bool
    status_code: int | None = None  # for server_error=503
    explicit_outcome: bool = False
    refusals: tuple[tuple[str, str], ...] = ()  # (provider, REFUSALS value) from [sim:<provider>_refuse=R]
    nsfw: bool = False  # the result flags its outputs as NSFW
    webhook: str | None = None  # WEBHOOK_MODES value from [sim:webhook=M]

    def refusal(self, provider: str) -> str | None:
        """How ``provider`` refuses this submit (``[sim:fal_refuse=503]``), or None."""
        return next((how for who, how in self.refusals if who == provider), None)


def strip_markers(prompt: str) -> str:
    """The prompt as a person wrote it, without ``[sim:…]`` markers (for captions)."""
    return re.sub(r"\s+", " ", MARKER.sub(" ", prompt)).strip()


def _number(name: str, value: str | None, kind: type[float] | type[int]) -> float:
    if value is None or value.strip() == "":
        raise MarkerError(f"[sim:{name}] needs a value, e.g. [sim:{name}=3]")
    try:
        number = kind(value.strip())
    except ValueError:
        raise MarkerError(f"[sim:{name}={value}]: {value!r} is not a number") from None
    if number < 0:
        raise MarkerError(f"[sim:{name}={value}] must not be negative")
    return number


def parse(prompt: object, settings: SimSettings, rng: random.Random | None = None) -> Scenario:
    """The scenario for a request whose ``prompt`` is ``prompt`` (any JSON value; non-strings: none)."""
    scenario = Scenario(outcome=settings.outcome, run_seconds=settings.run_seconds,
                        queue_position=settings.queue_position, flaky_polls=settings.flaky_polls,
                        rate_limit=settings.rate_limit)
    text = prompt if isinstance(prompt, str) else ""
    outcome_seen: str | None = None
    for match in MARKER.finditer(text):
        name, value = match.group(1).lower(), match.group(2)
        if name in _OUTCOMES:
            if outcome_seen and outcome_seen != name:
                raise MarkerError(f"one outcome per request: both [sim:{outcome_seen}] and [sim:{name}]")
            outcome_seen = name
            status = None
            if value is not None:
                if name != Outcome.SERVER_ERROR or value.strip() not in {"500", "503"}:
                    raise MarkerError(f"[sim:{name}] takes no value (only [sim:server_error=503] does)")
                status = int(value)
            scenario = replace(scenario, outcome=Outcome(name), status_code=status, explicit_outcome=True)
        elif name == "slow":
            scenario = replace(scenario, run_seconds=float(_number(name, value, float)))
        elif name == "queue":
            scenario = replace(scenario, queue_position=int(_number(name, value, int)))
        elif name == "flaky":
            scenario = replace(scenario, flaky_polls=int(_number(name, value, int)))
        elif name == "webhook":
            mode = (value or "").strip().lower()
            if mode not in WEBHOOK_MODES:
                raise MarkerError(f"[sim:webhook=M] needs M to be one of {', '.join(WEBHOOK_MODES)}")
            scenario = replace(scenario, webhook=mode)
        elif name in REFUSE_MARKERS:
            how = (value or "").strip().lower()
            if how not in REFUSALS:
                raise MarkerError(f"[sim:{name}=R] needs R to be one of {', '.join(REFUSALS)}")
            scenario = replace(scenario, refusals=(*scenario.refusals, (REFUSE_MARKERS[name], how)))
        elif name == "rate_limit":
            if value is not None:
                raise MarkerError("[sim:rate_limit] takes no value")
            scenario = replace(scenario, rate_limit=True)
        elif name == "nsfw":
            if value is not None:
                raise MarkerError("[sim:nsfw] takes no value")
            scenario = replace(scenario, nsfw=True)
        else:
            raise MarkerError(f"unknown simulator marker [sim:{match.group(1)}]; known: "
                              + ", ".join(f"[sim:{m}]" for m in KNOWN_MARKERS))
    if not scenario.explicit_outcome and settings.failure_rate and rng is not None:
        if rng.random() < settings.failure_rate:
            scenario = replace(scenario, outcome=rng.choice(settings.failure_outcomes))
    return scenario
