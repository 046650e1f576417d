"""WaveSpeed AI's v3 API behind ``ProviderAdapter``.

The traps this module exists to absorb (docs/providers.md §2, §4): success needs *both* a 2xx and an
envelope ``code`` of 200; a failed task is HTTP 200 + code 200 + ``data.status: "failed"`` with the
reason in ``data.code``/``data.error``; ``cancelled``/``timeout``/``deleted`` are terminal too; a
submit that may have reached the server must never be repeated blindly (it may already be a paid
task); there is no public cancel endpoint; uploads use a ticket + presigned PUT, with the older
multipart endpoint as fallback.
"""

from __future__ import annotations

import logging
import re
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

PROVIDER = "wavespeed"
DEFAULT_BASE_URL = "https://api.wavespeed.ai"
KEY_SETTING = "WAVESPEED_API_KEY (or key under [wavespeed] in the config file)"

_MODEL_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

_STATES = {"created": RemoteState.QUEUED, "processing": RemoteState.RUNNING, "completed": RemoteState.COMPLETED}
TERMINAL_FAILURES = frozenset({"failed", "cancelled", "timeout", "deleted"})
"""Statuses the SDK treats as final errors; ``status()`` reports them as COMPLETED and ``result()``
raises the matching error, so the tracker has one path for every ending."""

_BALANCE_WORDS = ("balance", "insufficient", "top up", "top-up", "credit")

_SUBMIT_MAYBE = ("WaveSpeed may have created the task anyway and may charge for it; check the "
                 "predictions in the WaveSpeed dashboard before submitting again.")

# Task codes (docs/providers.md §2.3) -> error class. 5000/5003/5004 are WaveSpeed's own "retry with
# backoff" codes. 1403 "Task Execution Failed" and 1405 "Task Failed" blame nothing in the input, so
# they are treated as transient too: a resubmission is the only remedy, and the tracker bounds how
# often it tries. Codes not listed (1406, 1407, new ones) are Unknown: someone should look.
_CONTENT_POLICY_CODES = frozenset({1200})
_INVALID_INPUT_CODES = frozenset({1400, 1401})
_MEDIA_CODES = frozenset({1402})
_TRANSIENT_CODES = frozenset({1403, 1405, 5000, 5003, 5004})


class WaveSpeedAdapter(KeyedClient):
    """WaveSpeed v3 client: submit, poll, fetch, upload; cancel is reported as unsupported.

    Retries (``RetryPolicy``): result/status GETs and uploads are repeated on 408/429/5xx and transport
    errors. Submit is repeated only on 429 and on connect-phase errors; a read timeout, a reset after
    sending or a 5xx raises ``Transient`` (not retryable) whose message says the task may exist.
    """

    name = provider = PROVIDER
    label = "WaveSpeed"
    submit_maybe = ". " + _SUBMIT_MAYBE

    def __init__(self, key: SecretStr | str, base_url: str = DEFAULT_BASE_URL,
                 client: httpx.AsyncClient | None = None, *, retry: RetryPolicy | None = None,
                 max_requests_in_flight: int | None = None) -> None:
        super().__init__(key, scheme="Bearer", key_setting=KEY_SETTING, client=client, retry=retry,
                         max_requests_in_flight=max_requests_in_flight)
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"WaveSpeedAdapter(base_url={self.base_url!r})"

    # -- submit ----------------------------------------------------------------------------------

    async def submit(self, endpoint_id: str, payload: dict[str, Any], *,
                     webhook_url: str | None = None) -> RequestRef:
        model = endpoint_id.strip().strip("/")
        parts = model.split("/")
        if len(parts) < 2 or not all(_MODEL_SEGMENT.fullmatch(p) for p in parts):
            raise InvalidInput(f"'{excerpt(endpoint_id, 120)}' is not a WaveSpeed model id; expected "
                               "owner/model[/variant] such as wavespeed-ai/hunyuan-video/i2v.", provider=PROVIDER)
        response = await self._send("POST", f"{self.base_url}/api/v3/{model}", what="submit",
                                    retry_response=retry_rate_limit_only, retry_error=retry_unsent_only,
                                    json=payload, params={"webhook": webhook_url} if webhook_url else None)
        data = self._envelope(response, "submit")
        task_id = data.get("id")
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise UnknownProviderError(
                "WaveSpeed accepted the submit but its reply has no usable task id, so the task cannot be "
                "followed. Check the predictions in the WaveSpeed dashboard before submitting again.",
                provider=PROVIDER, status_code=response.status_code, error_type=SUBMIT_OUTCOME_UNKNOWN,
                retryable=False)
        urls = data.get("urls")
        given = urls.get("get") if isinstance(urls, dict) else None
        trusted = isinstance(given, str) and same_origin(given, self.base_url)
        result_url = given if trusted else self._result_url(task_id)
        return RequestRef(provider=PROVIDER, endpoint_id=model, request_id=task_id,
                          status_url=result_url, result_url=result_url)

    # -- status and result -----------------------------------------------------------------------

    async def status(self, ref: RequestRef) -> StatusUpdate:
        data = await self._prediction(ref, ref.status_url, "status")
        state = data.get("status")
        if state in TERMINAL_FAILURES:
            error = first_text([data.get("error")]) or f"the task ended as {state}"
            code = data.get("code")
            return StatusUpdate(RemoteState.COMPLETED, error=self._redact(excerpt(error)),
                                error_type=str(code) if isinstance(code, int) and code else str(state))
        if state not in _STATES:
            log.warning("WaveSpeed reported an unknown status %r for %s; treating it as running",
                        excerpt(state, 40), ref.request_id)
        return StatusUpdate(_STATES.get(state, RemoteState.RUNNING))

    async def result(self, ref: RequestRef) -> ProviderResult:
        data = await self._prediction(ref, ref.result_url, "result")
        state = data.get("status")
        if state == "completed":
            return self._parse_outputs(data)
        if state in TERMINAL_FAILURES:
            raise self._redact.error(task_error(data))
        raise Transient("The WaveSpeed task has not finished yet; ask for the result after its status is "
                        "completed.", provider=PROVIDER, error_type="not_ready")

    async def cancel(self, ref: RequestRef) -> CancelOutcome:
        """WaveSpeed has no public cancel endpoint: the task runs to its end (and may be charged)."""
        return CancelOutcome.UNSUPPORTED

    # -- upload ----------------------------------------------------------------------------------

    async def upload(self, path: Path, content_type: str) -> str:
        """Ticket + presigned PUT (current flow); the multipart binary endpoint if tickets are missing."""
        data = await read_upload(path, provider=PROVIDER)
        response = await self._send("POST", f"{self.base_url}/api/v3/media/uploads", what="upload",
                                    retry_response=retry_idempotent, retry_error=retry_any_transport,
                                    json={"filename": path.name, "size": len(data), "content_type": content_type})
        if response.status_code in (404, 405):
            return await self._upload_binary(path, data, content_type)
        ticket = self._envelope(response, "upload")
        upload = ticket.get("upload")
        download_url = ticket.get("download_url")
        if not (isinstance(upload, dict) and isinstance(upload.get("url"), str)
                and str(upload.get("method", "PUT")).upper() == "PUT" and isinstance(download_url, str)):
            log.warning("WaveSpeed upload ticket is unusable; falling back to the binary upload endpoint")
            return await self._upload_binary(path, data, content_type)
        raw_headers = upload.get("headers")
        headers = {str(k): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        try:
            put = await send_with_retries(
                self._upload_client, "PUT", upload["url"], policy=self.retry, retry_response=retry_idempotent,
                retry_error=retry_any_transport, strip_auth=True, content=data, headers=headers,
                timeout=UPLOAD_TIMEOUT)
        except GaveUp as exc:
            raise Transient(f"Uploading {path.name} to WaveSpeed storage failed: {exc.reason}. "
                            "Try again in a moment.", provider=PROVIDER) from exc.error
        if not put.is_success:
            raise Transient(f"WaveSpeed storage refused the upload of {path.name} (HTTP {put.status_code}); "
                            "try again in a moment.", provider=PROVIDER, status_code=put.status_code)
        return download_url

    async def _upload_binary(self, path: Path, data: bytes, content_type: str) -> str:
        response = await self._send("POST", f"{self.base_url}/api/v3/media/upload/binary", what="upload",
                                    retry_response=retry_idempotent, retry_error=retry_any_transport,
                                    files={"file": (path.name, data, content_type)}, timeout=UPLOAD_TIMEOUT,
                                    carries_file=True)
        body = self._envelope(response, "upload")
        url = body.get("download_url")
        if not isinstance(url, str) or not url:
            raise UnknownProviderError("WaveSpeed accepted the upload but returned no download_url; "
                                       "try the upload again.", provider=PROVIDER, retryable=True)
        return url

    # -- plumbing --------------------------------------------------------------------------------

    def _result_url(self, task_id: str) -> str:
        return f"{self.base_url}/api/v3/predictions/{task_id}/result"

    async def _prediction(self, ref: RequestRef, given: str | None, what: str) -> dict[str, Any]:
        if given and same_origin(given, self.base_url):
            url = given
        else:
            if given:
                log.warning("ignoring WaveSpeed %s URL on a foreign origin for task %s", what, ref.request_id)
            if not _TASK_ID.fullmatch(ref.request_id):
                raise InvalidInput(f"'{excerpt(ref.request_id, 80)}' is not a WaveSpeed task id.",
                                   provider=PROVIDER)
            url = self._result_url(ref.request_id)
        response = await self._send("GET", url, what=what, retry_response=retry_idempotent,
                                    retry_error=retry_any_transport)
        return self._envelope(response, what)

    def _envelope(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """``data`` of a successful envelope; any other reply becomes the matching error."""
        body = json_body(response)
        if response.is_success and isinstance(body, dict) and body.get("code") == 200 \
                and isinstance(body.get("data"), dict):
            return body["data"]
        raise self._redact.error(wavespeed_error(response, what))

    def _parse_outputs(self, data: dict[str, Any]) -> ProviderResult:
        outputs = []
        for item in data.get("outputs") or ():
            if isinstance(item, str) and item:
                outputs.append(OutputFile(url=item))
            elif isinstance(item, dict) and isinstance(item.get("url"), str):
                outputs.append(OutputFile(url=item["url"], content_type=item.get("content_type")))
        if not outputs:
            raise UnknownProviderError(
                "WaveSpeed reported the task completed but returned no output URL. Try the request again; "
                "if it repeats, report it to WaveSpeed with the task id.", provider=PROVIDER, retryable=False)
        skip = {"outputs", "status", "error", "code", "urls", "input", "id"}
        return ProviderResult(outputs=tuple(outputs), extra={k: v for k, v in data.items() if k not in skip})


# -- error mapping -------------------------------------------------------------------------------

def wavespeed_error(response: httpx.Response, what: str) -> ProviderError:
    """Map an unsuccessful reply (non-2xx, or 2xx whose envelope ``code`` is not 200) to the taxonomy.

    The envelope code stands in for the HTTP status when the HTTP status says success. The caller
    redacts the key.
    """
    body = json_body(response)
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    status = response.status_code
    if response.is_success:
        status = code if isinstance(code, int) and not isinstance(code, bool) else 0
    message = first_text([body.get("message"), body.get("error"), body.get("detail")]) or ""
    if not message and not body and response.text:
        message = response.text
    error_code = body.get("error_code")
    said = f" WaveSpeed said: {sentence(excerpt(message, 200))}" if message else ""
    if isinstance(error_code, str) and error_code:
        said += f" [{excerpt(error_code, 40)}]"
    kw: dict[str, Any] = {"provider": PROVIDER, "status_code": response.status_code,
                          "error_type": error_code if isinstance(error_code, str) else None}

    if status == 402 or any(word in message.lower() for word in _BALANCE_WORDS):
        return OutOfBalance("The WaveSpeed account balance is too low for this task. Top up in the WaveSpeed "
                            f"dashboard and try again.{said}", **kw)
    if status == 401:
        return AuthenticationFailed(
            f"WaveSpeed rejected the API key (HTTP 401).{said} Check {KEY_SETTING}; new keys work only "
            "after the account's first top-up.", **kw)
    if status == 403:
        return AuthenticationFailed(
            f"WaveSpeed refused this API key (HTTP 403): the account may be suspended or the key lacks "
            f"access.{said} Check the account in the WaveSpeed dashboard.", **kw)
    if status == 429:
        wait = retry_after(response)
        when = f"after {wait:.0f} s" if wait is not None else "in a minute"
        return RateLimited(f"WaveSpeed is rate-limiting this account (HTTP 429); try again {when}. Low account "
                           "levels allow only a few tasks per minute.", retry_after=wait, **kw)
    if status == 404:
        if what == "submit":
            return InvalidInput(f"WaveSpeed does not know this model (HTTP 404).{said} Check the model id.", **kw)
        if what == "upload":
            return UnknownProviderError(f"WaveSpeed's upload endpoint was not found (HTTP 404).{said}", **kw)
        return RequestNotFound(
            f"WaveSpeed does not know this task (HTTP 404); predictions are deleted after 7 days, or it "
            f"belongs to another key.{said}", **kw)
    if status == 413:
        return InvalidInput(f"The file is too large for WaveSpeed (HTTP 413).{said} Use a smaller file or "
                            "pass a public URL instead.", **kw)
    if status in (400, 422):
        return InvalidInput(f"WaveSpeed rejected the input (HTTP {status}).{said} Fix the arguments and try "
                            "again.", **kw)
    if status >= 500 or status == 408:
        if what == "submit":
            return Transient(f"WaveSpeed answered the submit with HTTP {status}.{said} " + _SUBMIT_MAYBE,
                             retryable=False, **{**kw, "error_type": SUBMIT_OUTCOME_UNKNOWN})
        return Transient(f"WaveSpeed failed to answer the {what} call (HTTP {status}).{said} This is on "
                         "WaveSpeed's side; try again in a few minutes.", **kw)
    if response.is_success and isinstance(body.get("code"), int):
        return UnknownProviderError(f"WaveSpeed answered the {what} call with code {status}.{said}", **kw)
    if response.is_success:
        return UnknownProviderError(f"WaveSpeed's reply to the {what} call is not the expected envelope "
                                    f"(code 200 with data).{said}", **kw)
    return UnknownProviderError(f"WaveSpeed answered the {what} call with HTTP {status}.{said}", **kw)


def task_error(data: dict[str, Any]) -> ProviderError:
    """Map a prediction that ended without output (``data.status`` failed/cancelled/timeout/deleted)."""
    state = data.get("status")
    code = data.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    text = first_text([data.get("error")]) or ""
    said = f" (WaveSpeed: {excerpt(text)})" if text else ""
    kw: dict[str, Any] = {"provider": PROVIDER, "status_code": 200,
                          "error_type": str(code) if code else str(state), "retryable": False}
    if state == "cancelled":
        return Cancelled(f"The WaveSpeed task was cancelled before it produced a result.{said}", **kw)
    if state == "deleted":
        return RequestNotFound(f"The WaveSpeed task was deleted, so its output is gone.{said} Submit it again "
                               "if you still need it.", **kw)
    if code in _CONTENT_POLICY_CODES:
        return ContentPolicy("The provider's content checker rejected this prompt or image; rephrase the "
                             f"prompt or use another image and try again.{said}", **kw)
    if code in _INVALID_INPUT_CODES:
        return InvalidInput(f"WaveSpeed rejected the input{said}. Fix the arguments and try again.", **kw)
    if code in _MEDIA_CODES:
        return MediaDownloadFailed("WaveSpeed could not download an input file. Make sure the URL is public "
                                   f"and still valid, or upload the file, then try again.{said}", **kw)
    if state == "timeout" or code in _TRANSIENT_CODES:
        label = f"code {code}" if code else str(state)
        return Transient(f"WaveSpeed failed to run the task ({label}).{said} This is on WaveSpeed's side; "
                         "submit it again in a few minutes.", **kw)
    label = f" (code {code})" if code else ""
    return UnknownProviderError(f"The WaveSpeed task failed{label}.{said} If this repeats, report it to "
                                "WaveSpeed with the task id.", **kw)
