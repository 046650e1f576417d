"""One error taxonomy for every provider.

The tracker decides from ``kind`` alone whether to retry, release the hold or alert the operator;
surfaces show ``message``, which says what happened and what to do and never contains a key.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_INPUT = "invalid_input"
    CONTENT_POLICY = "content_policy"
    MEDIA_DOWNLOAD_FAILED = "media_download_failed"
    AUTHENTICATION = "authentication"
    OUT_OF_BALANCE = "out_of_balance"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    CANCELLED = "cancelled"  # the request was cancelled before it produced output: release the hold
    UNKNOWN = "unknown"


RETRYABLE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT})

SUBMIT_OUTCOME_UNKNOWN = "submit_outcome_unknown"
"""``error_type`` of a submit error after which the request may exist (and be billed) at the provider:
the reply was lost after sending, or the provider answered 5xx or without an id. Never resend blindly."""


FAILOVER_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT, ErrorKind.OUT_OF_BALANCE,
                            ErrorKind.AUTHENTICATION})
"""Refusals that blame the provider (busy, down, out of credit, key refused), not the request."""


def refused_unsent(exc: "ProviderError") -> bool:
    """A submit refused by the provider itself, after which the request certainly does not exist
    there: the only case in which the same job may be sent to another provider (failover)."""
    return exc.kind in FAILOVER_KINDS and exc.error_type != SUBMIT_OUTCOME_UNKNOWN


class ProviderError(Exception):
    """A provider refused or failed a request. ``retryable`` is about the same call, not the job."""

    kind: ErrorKind = ErrorKind.UNKNOWN

    def __init__(self, message: str, *, provider: str = "", status_code: int | None = None,
                 error_type: str | None = None, retry_after: float | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.error_type = error_type
        self.retry_after = retry_after
        self.retryable = self.kind in RETRYABLE if retryable is None else retryable

    def __str__(self) -> str:
        return self.message


class InvalidInput(ProviderError):
    kind = ErrorKind.INVALID_INPUT


class ContentPolicy(ProviderError):
    kind = ErrorKind.CONTENT_POLICY


class MediaDownloadFailed(ProviderError):
    kind = ErrorKind.MEDIA_DOWNLOAD_FAILED


class AuthenticationFailed(ProviderError):
    kind = ErrorKind.AUTHENTICATION


class OutOfBalance(ProviderError):
    kind = ErrorKind.OUT_OF_BALANCE


class RateLimited(ProviderError):
    kind = ErrorKind.RATE_LIMITED


class Transient(ProviderError):
    kind = ErrorKind.TRANSIENT


class Cancelled(ProviderError):
    """The request was cancelled (by us or at the provider) before it produced an output.

    Its own kind because the tracker's answer differs from every other one: nothing to fix,
    nothing to retry, nobody to alert; mark the job cancelled and release its hold.
    """

    kind = ErrorKind.CANCELLED


class UnknownProviderError(ProviderError):
    kind = ErrorKind.UNKNOWN


class RequestNotFound(UnknownProviderError):
    """The provider does not know this request id: expired, deleted, or made with another account.

    Kind ``UNKNOWN`` (the job is lost and someone should look), but its own class so callers that
    resume old jobs can tell it apart without parsing messages.
    """


BY_KIND: dict[ErrorKind, type[ProviderError]] = {
    cls.kind: cls for cls in (InvalidInput, ContentPolicy, MediaDownloadFailed, AuthenticationFailed,
                              OutOfBalance, RateLimited, Transient, Cancelled, UnknownProviderError)
}
