"""The one shape the rest of videogen sees of a provider, whatever its protocol.

Provider quirks (fal's owner/app URLs, 202-then-200, failures that arrive as COMPLETED then a 422;
WaveSpeed's envelope and failed-under-HTTP-200) stay inside ``fal.py`` and ``wavespeed.py``. The job
tracker only ever calls ``submit``, ``status``, ``result``, ``cancel`` and ``upload`` and reads these
dataclasses, so a third provider is one new module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class RemoteState(StrEnum):
    """What the provider says about a request, normalised across providers."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"  # finished: call ``result()`` to learn whether it succeeded


@dataclass(frozen=True)
class RequestRef:
    """Everything needed to find a request again, also after a restart: persisted in the job row.

    ``status_url``/``result_url``/``cancel_url`` are the URLs the provider returned at submit time;
    adapters use them as given and only rebuild them (from the endpoint id) when they are missing.
    """

    provider: str
    endpoint_id: str
    request_id: str
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None


@dataclass(frozen=True)
class StatusUpdate:
    state: RemoteState
    queue_position: int | None = None
    logs: tuple[str, ...] = ()  # log lines as the provider reports them (all so far, not only new)
    error: str | None = None  # fal's optional ``error`` on COMPLETED; the result call is still made
    error_type: str | None = None  # machine-readable companion of ``error`` (fal ``error_type``, WaveSpeed code)


@dataclass(frozen=True)
class OutputFile:
    url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None


NSFW_KEYS = ("has_nsfw_concepts", "has_nsfw_contents")


@dataclass(frozen=True)
class ProviderResult:
    outputs: tuple[OutputFile, ...]
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other result fields (video_id, has_nsfw_contents…)

    def nsfw(self, index: int) -> bool:
        """Whether the provider's safety checker flagged output ``index`` (fal ``has_nsfw_concepts``,
        WaveSpeed ``has_nsfw_contents``: one flag per output); no flags means not flagged."""
        for key in NSFW_KEYS:
            flags = self.extra.get(key)
            if isinstance(flags, list) and index < len(flags) and flags[index] is True:
                return True
        return False


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # removed before it ran
    REQUESTED = "requested"  # a running request was asked to stop; it may still finish
    ALREADY_COMPLETED = "already_completed"
    NOT_FOUND = "not_found"
    UNSUPPORTED = "unsupported"  # WaveSpeed has no public cancel endpoint


class ProviderAdapter(Protocol):
    name: str

    async def submit(self, endpoint_id: str, payload: dict[str, Any], *,
                     webhook_url: str | None = None) -> RequestRef: ...

    async def status(self, ref: RequestRef) -> StatusUpdate: ...

    async def result(self, ref: RequestRef) -> ProviderResult: ...

    async def cancel(self, ref: RequestRef) -> CancelOutcome: ...

    async def upload(self, path: Path, content_type: str) -> str: ...

    async def aclose(self) -> None: ...
