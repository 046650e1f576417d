"""fal.ai's queue API behind ``ProviderAdapter``.

The traps this module exists to absorb (docs/providers.md §1, §4): status/result/cancel live under
``owner/app`` only, not the full endpoint path; status answers 202 while pending and 200 when done;
there is no FAILED state, so a failure is a COMPLETED status followed by a non-2xx *result*; cancel
is a PUT and a 400 ``ALREADY_COMPLETED`` is an answer, not an error; a 504 with
``X-Fal-Request-Timeout-Type: user`` must not be retried; upload PUTs are presigned and must not
carry the key.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from .base import CancelOutcome, OutputFile, ProviderResult, RemoteState, RequestRef, StatusUpdate
from .errors import (AuthenticationFailed, Cancelled, ContentPolicy, InvalidInput, MediaDownloadFailed,
                     OutOfBalance, ProviderError, RateLimited, RequestNotFound, SUBMIT_OUTCOME_UNKNOWN,
                     Transient, UnknownProviderError)
from .http import (GaveUp, KeyedClient, RetryPolicy, UPLOAD_TIMEOUT, excerpt, first_text,
                   json_body, read_upload, retry_after, retry_any_transport, retry_idempotent,
                   retry_rate_limit_only, retry_unsent_only, same_origin, send_with_retries,
                   sentence)

log = logging.getLogger(__name__)

PROVIDER = "fal"
DEFAULT_QUEUE_URL = "https://queue.fal.run"
DEFAULT_REST_URL = "https://rest.fal.ai"
KEY_SETTING = "FAL_KEY (or key under [fal] in the config file)"

APP_NAMESPACES = ("workflows", "comfy")
"""Leading segments that are not the owner (fal-client ``APP_NAMESPACES``)."""

TIMEOUT_TYPE_HEADER = "X-Fal-Request-Timeout-Type"
ERROR_TYPE_HEADER = "X-Fal-Error-Type"

DATA_URI_MAX_BYTES = 256 * 1024
"""Files up to this size are inlined as ``data:`` URIs: no upload round trip, and small enough not to
bloat the request. fal documents data URIs as accepted by "some models", so raise the bar with care."""
MAX_UPLOAD_BYTES = 90 * 1024 * 1024
"""Above this fal wants its multipart upload flow, which this adapter does not implement."""

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_NUMERIC_APP = re.compile(r"([0-9]+)-([A-Za-z0-9-]+)")

_VALIDATION_TYPES_MEDIA = ("file_download_error",)
_VALIDATION_TYPES_POLICY = ("content_policy_violation",)


@dataclass(frozen=True)
class AppId:
    """An endpoint id split the way fal routes it: ``[namespace/]owner/alias[/path]``."""

    owner: str
    alias: str
    path: str | None = None
    namespace: str | None = None

    @classmethod
    def parse(cls, endpoint_id: str) -> AppId:
        """Mirror fal-client's ``AppId.from_endpoint_id``; ``InvalidInput`` for anything else."""
        text = endpoint_id.strip().strip("/")
        parts = text.split("/")
        if len(parts) == 1 and (m := _NUMERIC_APP.fullmatch(text)):
            parts = [m.group(1), m.group(2)]
        minimum = 3 if parts[0] in APP_NAMESPACES else 2
        if len(parts) < minimum or not all(_SEGMENT.fullmatch(p) for p in parts):
            raise InvalidInput(
                f"'{excerpt(endpoint_id, 120)}' is not a fal endpoint id; expected owner/app[/path] "
                "such as fal-ai/pika/v2.2/text-to-video.", provider=PROVIDER)
        if parts[0] in APP_NAMESPACES:
            return cls(parts[1], parts[2], "/".join(parts[3:]) or None, parts[0])
        return cls(parts[0], parts[1], "/".join(parts[2:]) or None)

    @property
    def base(self) -> str:
        """What status/result/cancel URLs are built from: ``[namespace/]owner/alias``, no sub-path."""
        prefix = f"{self.namespace}/" if self.namespace else ""
        return f"{prefix}{self.owner}/{self.alias}"

    @property
    def full(self) -> str:
        """What submit posts to: the whole id, slashes literal."""
        return self.base + (f"/{self.path}" if self.path else "")


def app_base(endpoint_id: str) -> str:
    """``fal-ai/pika/v2.2/text-to-video`` → ``fal-ai/pika`` (see docs/providers.md §1.2)."""
    return AppId.parse(endpoint_id).base


class FalAdapter(KeyedClient):
    """fal.ai queue API client: submit, poll, fetch, cancel, upload.

    Retries (``RetryPolicy``): status, result and cancel are repeated on 408/429/5xx and transport
    errors, except a 504 marked as the *user's* start deadline; a result 5xx only
    ``policy.result_attempts`` times. Submit is repeated only on 429 and on errors raised before the
    request left (connect errors), because a repeated submit is a second paid job.
    """

    name = provider = label = PROVIDER
    submit_maybe = (", so fal may have queued the request and may charge for it. Check the fal dashboard "
                    "before submitting again.")

    def __init__(self, key: SecretStr | str, queue_url: str = DEFAULT_QUEUE_URL,
                 rest_url: str = DEFAULT_REST_URL, client: httpx.AsyncClient | None = None, *,
                 retry: RetryPolicy | None = None, data_uri_max_bytes: int = DATA_URI_MAX_BYTES,
                 max_requests_in_flight: int | None = None) -> None:
        super().__init__(key, scheme="Key", key_setting=KEY_SETTING, client=client, retry=retry,
                         max_requests_in_flight=max_requests_in_flight)
        self.queue_url = queue_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self.data_uri_max_bytes = data_uri_max_bytes

    def __repr__(self) -> str:
        return f"FalAdapter(queue_url={self.queue_url!r}, rest_url={self.rest_url!r})"

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, endpoint_id: str, payload: dict[str, Any], *,
                     webhook_url: str | None = None) -> RequestRef:
        """Queue a request; the body is the model input exactly as given (fal does not validate it).
        ``webhook_url``: fal POSTs a signed callback there when the request ends (``fal_webhook``)."""
        app = AppId.parse(endpoint_id)
        url = f"{self.queue_url}/{app.full}"
        response = await self._send("POST", url, what="submit", retry_response=retry_rate_limit_only,
                                    retry_error=retry_unsent_only, json=payload,
                                    params={"fal_webhook": webhook_url} if webhook_url else None)
        if not response.is_success:
            raise self._http_error(response, "submit")
        data = json_body(response)
        data = data if isinstance(data, dict) else {}
        missing = [k for k in ("request_id", "status_url", "response_url", "cancel_url")
                   if not isinstance(data.get(k), str) or not data[k]]
        if missing:
            rid = data.get("request_id")
            seen = f" for request {rid}" if isinstance(rid, str) and rid else ""
            raise UnknownProviderError(
                f"fal accepted the submit{seen} but its reply lacks {', '.join(missing)}, so the job "
                "cannot be followed. Check the request in the fal dashboard before submitting again.",
                provider=PROVIDER, status_code=response.status_code, error_type=SUBMIT_OUTCOME_UNKNOWN,
                retryable=False)
        return RequestRef(provider=PROVIDER, endpoint_id=app.full, request_id=data["request_id"],
                          status_url=data["status_url"], result_url=data["response_url"],
                          cancel_url=data["cancel_url"])

    # -- status ----------------------------------------------------------------------------------

    async def status(self, ref: RequestRef) -> StatusUpdate:
        response = await self._send("GET", self._url(ref, "status"), what="status",
                                    retry_response=_retry_unless_user_timeout,
                                    retry_error=retry_any_transport, params={"logs": "1"})
        if not response.is_success:
            raise self._http_error(response, "status")
        data = json_body(response)
        if not isinstance(data, dict):
            raise Transient("fal's status endpoint answered with something that is not JSON; "
                            "it will be asked again.", provider=PROVIDER, status_code=response.status_code)
        state = data.get("status")
        logs = tuple(entry["message"] for entry in data.get("logs") or ()
                     if isinstance(entry, dict) and isinstance(entry.get("message"), str))
        if state == "IN_QUEUE":
            position = data.get("queue_position")
            return StatusUpdate(RemoteState.QUEUED, queue_position=position if isinstance(position, int) else None)
        if state == "COMPLETED":
            error = data.get("error")
            error_type = data.get("error_type")
            return StatusUpdate(RemoteState.COMPLETED, logs=logs,
                                error=self._redact(excerpt(error)) if error else None,
                                error_type=error_type if isinstance(error_type, str) else None)
        if state != "IN_PROGRESS":
            log.warning("fal reported an unknown status %r for %s; treating it as running",
                        excerpt(state, 40), ref.request_id)
        return StatusUpdate(RemoteState.RUNNING, logs=logs)

    # -- result ----------------------------------------------------------------------------------

    async def result(self, ref: RequestRef) -> ProviderResult:
        """The output of a COMPLETED request; a non-2xx here *is* the failure (there is no FAILED)."""
        attempts = self.retry.result_attempts

        def retry_result(response: httpx.Response, attempt: int) -> bool:
            if response.status_code >= 500:
                return attempt < attempts and _retry_unless_user_timeout(response, attempt)
            return retry_idempotent(response, attempt)

        response = await self._send("GET", self._url(ref, "result"), what="result",
                                    retry_response=retry_result, retry_error=retry_any_transport)
        if not response.is_success:
            raise self._http_error(response, "result")
        data = json_body(response)
        if not isinstance(data, dict):
            raise UnknownProviderError(
                "fal reported success but the result is not a JSON object; the output cannot be read. "
                "Try the request again.", provider=PROVIDER, status_code=response.status_code,
                retryable=False)
        return _parse_result(data)

    # -- cancel ----------------------------------------------------------------------------------

    async def cancel(self, ref: RequestRef) -> CancelOutcome:
        response = await self._send("PUT", self._url(ref, "cancel"), what="cancel",
                                    retry_response=_retry_unless_user_timeout, retry_error=retry_any_transport)
        body = json_body(response)
        answer = body.get("status") if isinstance(body, dict) else None
        outcomes = {"OK": CancelOutcome.CANCELLED, "CANCELLATION_REQUESTED": CancelOutcome.REQUESTED,
                    "ALREADY_COMPLETED": CancelOutcome.ALREADY_COMPLETED, "NOT_FOUND": CancelOutcome.NOT_FOUND}
        if answer in outcomes and response.status_code in (200, 202, 400, 404):
            return outcomes[answer]
        if response.status_code == 200:
            return CancelOutcome.CANCELLED
        if response.status_code == 202:
            return CancelOutcome.REQUESTED
        if response.status_code == 404:
            return CancelOutcome.NOT_FOUND
        raise self._http_error(response, "cancel")

    # -- upload ----------------------------------------------------------------------------------

    async def upload(self, path: Path, content_type: str) -> str:
        """A URL fal models can read: a ``data:`` URI for small files, else fal's CDN via initiate+PUT."""
        data = await read_upload(path, provider=PROVIDER, max_bytes=MAX_UPLOAD_BYTES)
        if len(data) <= self.data_uri_max_bytes:
            return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
        initiate = f"{self.rest_url}/storage/upload/initiate"
        response = await self._send("POST", initiate, what="upload", retry_response=retry_idempotent,
                                    retry_error=retry_any_transport, params={"storage_type": "fal-cdn-v3"},
                                    json={"content_type": content_type, "file_name": path.name})
        if not response.is_success:
            raise self._http_error(response, "upload")
        ticket = json_body(response)
        upload_url = ticket.get("upload_url") if isinstance(ticket, dict) else None
        file_url = ticket.get("file_url") if isinstance(ticket, dict) else None
        if not isinstance(upload_url, str) or not isinstance(file_url, str):
            raise UnknownProviderError("fal's storage did not return upload_url and file_url; "
                                       "try the upload again later.", provider=PROVIDER, retryable=True)
        try:
            put = await send_with_retries(
                self._upload_client, "PUT", upload_url, policy=self.retry, retry_response=retry_idempotent,
                retry_error=retry_any_transport, strip_auth=True, content=data,
                headers={"Content-Type": content_type}, timeout=UPLOAD_TIMEOUT)
        except GaveUp as exc:
            raise Transient(f"Uploading {path.name} to fal storage failed: {exc.reason}. "
                            "Try again in a moment.", provider=PROVIDER) from exc.error
        if not put.is_success:
            raise Transient(f"fal storage refused the upload of {path.name} (HTTP {put.status_code}); "
                            "try again in a moment.", provider=PROVIDER, status_code=put.status_code)
        return file_url

    # -- plumbing --------------------------------------------------------------------------------

    def _url(self, ref: RequestRef, kind: str) -> str:
        """The URL fal returned at submit time, or one rebuilt from ``owner/app`` when it is missing.

        A stored URL on another origin than ``queue_url`` is not used: the key would go there.
        """
        given = {"status": ref.status_url, "result": ref.result_url, "cancel": ref.cancel_url}[kind]
        if given and same_origin(given, self.queue_url):
            return given
        if given:
            log.warning("ignoring fal %s URL on a foreign origin for request %s", kind, ref.request_id)
        if not _REQUEST_ID.fullmatch(ref.request_id):
            raise InvalidInput(f"'{excerpt(ref.request_id, 80)}' is not a fal request id.", provider=PROVIDER)
        base = f"{self.queue_url}/{app_base(ref.endpoint_id)}/requests/{ref.request_id}"
        return {"status": f"{base}/status", "result": base, "cancel": f"{base}/cancel"}[kind]

    def _http_error(self, response: httpx.Response, what: str) -> ProviderError:
        return self._redact.error(fal_error(response, what))


def _retry_unless_user_timeout(response: httpx.Response, attempt: int) -> bool:
    """Idempotent-call predicate that honours fal's start deadline: that 504 will not change."""
    if response.status_code == 504 and response.headers.get(TIMEOUT_TYPE_HEADER, "").lower() == "user":
        return False
    return retry_idempotent(response, attempt)


# -- result parsing ------------------------------------------------------------------------------

_MEDIA_KEYS = ("video", "videos", "images", "image")


def _output(item: Any) -> OutputFile | None:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        return None

    def num(name: str) -> int | None:
        value = item.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def text(name: str) -> str | None:
        value = item.get(name)
        return value if isinstance(value, str) else None

    return OutputFile(url=item["url"], content_type=text("content_type"), file_name=text("file_name"),
                      file_size=num("file_size"), width=num("width"), height=num("height"))


def _parse_result(data: dict[str, Any]) -> ProviderResult:
    outputs: list[OutputFile] = []
    for key in _MEDIA_KEYS:
        value = data.get(key)
        for item in value if isinstance(value, list) else [value]:
            if (file := _output(item)) is not None:
                outputs.append(file)
    if not outputs:
        fields = ", ".join(sorted(data)) or "none"
        raise UnknownProviderError(
            f"fal reported success but the result has no video or image URL (fields: {excerpt(fields, 200)}). "
            "Try the request again; if it repeats, the model may have changed its output format.",
            provider=PROVIDER, retryable=False)
    seed = data.get("seed")
    extra = {k: v for k, v in data.items() if k not in (*_MEDIA_KEYS, "seed")}
    return ProviderResult(outputs=tuple(outputs),
                          seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                          extra=extra)


# -- error mapping -------------------------------------------------------------------------------

def fal_error(response: httpx.Response, what: str) -> ProviderError:
    """Map a non-2xx fal reply to the taxonomy (docs/providers.md §1.1, §1.8).

    Messages are built from ``detail``/``msg`` text only; ``input`` and ``ctx`` may echo the whole
    prompt or a data URI and are never read. The caller redacts the key.
    """
    code = response.status_code
    body = json_body(response)
    body = body if isinstance(body, dict) else {}
    detail = body.get("detail")
    error_type = body.get("error_type") or response.headers.get(ERROR_TYPE_HEADER)
    error_type = error_type if isinstance(error_type, str) else None
    text = _detail_text(detail) or (excerpt(response.text, 200) if response.text and not body else "")
    said = f" fal said: {sentence(text)}" if text else ""
    kw: dict[str, Any] = {"provider": PROVIDER, "status_code": code, "error_type": error_type}

    if code == 401:
        return AuthenticationFailed(
            f"fal rejected the API key (HTTP 401).{said} Check {KEY_SETTING}; a fal key looks like "
            "<key_id>:<key_secret>.", **kw)
    if code == 403:
        lowered = text.lower()
        if "balance" in lowered or "locked" in lowered or "billing" in lowered:
            return OutOfBalance(
                "The fal account is out of credit or locked, so fal refuses new work. Top up the balance "
                f"in the fal dashboard (billing) and try again.{said}", **kw)
        return AuthenticationFailed(
            f"fal refused access with this API key (HTTP 403).{said} Check that the key may use this "
            "endpoint.", **kw)
    if code == 429:
        wait = retry_after(response)
        when = f"after {wait:.0f} s" if wait is not None else "in a minute"
        return RateLimited(f"fal is rate-limiting this account (HTTP 429); try again {when}.", retry_after=wait,
                           **kw)
    if code == 404 and what == "upload":
        return UnknownProviderError(f"fal's storage upload endpoint was not found (HTTP 404).{said}", **kw)
    if code == 404:
        return RequestNotFound(
            f"fal does not know this request ({what}, HTTP 404); it may have expired (results are kept "
            f"for a limited time) or belong to another key.{said}", **kw)
    if code == 504 and response.headers.get(TIMEOUT_TYPE_HEADER, "").lower() == "user":
        return Transient(
            "fal could not start the request before its start deadline (HTTP 504, user timeout); "
            "nothing ran and nothing is charged. Submit it again, perhaps at a quieter time.",
            retryable=False, **{**kw, "error_type": error_type or "request_timeout"})
    if code == 499 or error_type in ("client_cancelled", "client_disconnected"):
        if error_type == "client_disconnected":
            return Transient(f"fal dropped the request because the client disconnected.{said} "
                             "Submit it again.", retryable=False, **kw)
        return Cancelled("The request was cancelled before it produced a result; nothing to download.",
                         retryable=False, **{**kw, "error_type": error_type or "client_cancelled"})
    if isinstance(detail, list) and detail:
        return _validation_error(detail, kw)
    if what == "submit" and gateway_refusal(response):
        return Transient(
            f"fal's gateway answered the submit with HTTP {code} before it reached the queue (no request id), "
            "so nothing was queued or charged. Try again in a few minutes.", retryable=False,
            **{**kw, "error_type": NOT_QUEUED})
    if what == "submit" and code >= 500:
        return Transient(
            f"fal answered the submit with HTTP {code}.{said} fal may have queued the request anyway and may "
            "charge for it; check the fal dashboard before submitting again.", retryable=False,
            **{**kw, "error_type": SUBMIT_OUTCOME_UNKNOWN})
    if code >= 500 or error_type in _TRANSIENT_TYPES:
        kind = f" ({error_type})" if error_type else ""
        return Transient(
            f"fal failed to run the request{kind}, HTTP {code}.{said} This is on fal's side and is not "
            "charged; try again in a few minutes.", retryable=False if what == "result" else True, **kw)
    if what == "result" and code == 400 and "progress" in text.lower():
        return Transient("The request has not finished yet; ask for the result after its status is "
                         "COMPLETED.", retryable=True, **{**kw, "error_type": "not_ready"})
    if code in (400, 413, 422) or error_type == "bad_request":
        return InvalidInput(f"fal rejected the input (HTTP {code}).{said} Fix the arguments and try again.",
                            **kw)
    if code in (408, 409):
        return Transient(f"fal timed out the {what} call (HTTP {code}); try again.", **kw)
    return UnknownProviderError(f"fal answered the {what} call with HTTP {code}.{said}", **kw)


NOT_QUEUED = "not_queued"
"""``error_type`` of a submit the gateway refused before fal's queue saw it: nothing exists to bill."""


def gateway_refusal(response: httpx.Response) -> bool:
    """A 502/503/504 from fal's ingress, not from the queue: no ``X-Fal-Request-Id`` and an HTML
    (nginx) page instead of JSON. fal-client repeats exactly these, submits included, because the
    request never reached the queue (docs/providers.md §1.11); any other 5xx may have queued it."""
    return (response.status_code in (502, 503, 504) and "x-fal-request-id" not in response.headers
            and json_body(response) is None and "nginx" in response.text.lower())


_TRANSIENT_TYPES = frozenset({
    "request_timeout", "startup_timeout", "runner_scheduling_failure", "runner_connection_timeout",
    "runner_disconnected", "runner_connection_refused", "runner_connection_error",
    "runner_incomplete_response", "runner_server_error", "internal_error"})


def _detail_text(detail: Any) -> str:
    """The readable part of ``detail``: a string as-is, a list as ``loc: msg`` items (never input/ctx)."""
    if isinstance(detail, str):
        return excerpt(detail)
    if isinstance(detail, list):
        items = []
        for entry in detail[:5]:
            if isinstance(entry, dict):
                loc = entry.get("loc")
                where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
                msg = first_text([entry.get("msg")]) or entry.get("type") or "invalid"
                items.append(f"{where}: {msg}" if where else str(msg))
        return excerpt("; ".join(items))
    return ""


def _validation_error(detail: list[Any], kw: dict[str, Any]) -> ProviderError:
    """A 422 ``detail`` list: the gravest entry type decides the kind."""
    types = [str(e.get("type", "")) for e in detail if isinstance(e, dict)]
    text = _detail_text(detail)
    error_type = next((t for t in types if t), None)
    kw = {**kw, "error_type": kw.get("error_type") or error_type}
    if any(t in _VALIDATION_TYPES_POLICY for t in types):
        return ContentPolicy(
            "The provider's content checker rejected this prompt or image; rephrase the prompt or use "
            f"another image and try again. (fal: {text})", **{**kw, "error_type": "content_policy_violation"})
    if any(t in _VALIDATION_TYPES_MEDIA for t in types):
        return MediaDownloadFailed(
            "fal could not download an input file. Make sure the URL is public and still valid, or upload "
            f"the file, then try again. (fal: {text})", **{**kw, "error_type": "file_download_error"})
    return InvalidInput(f"fal rejected the input: {text}. Fix the arguments and try again.", **kw)
