"""How both adapters talk HTTP: one retry loop, one backoff formula, one way to keep keys out of text.

Retry *decisions* differ per call (a fal status GET may be repeated freely, a WaveSpeed submit that
may have reached the server must never be), so callers pass two predicates; the loop, the delays,
``Retry-After`` and the injectable ``sleep`` live here once, which is what lets the tests run the real
retry paths over loopback in milliseconds.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import random
import re
import ssl
import time
from pathlib import Path
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from .errors import SUBMIT_OUTCOME_UNKNOWN, AuthenticationFailed, InvalidInput, ProviderError, Transient

log = logging.getLogger(__name__)

NOT_SENT: tuple[type[httpx.TransportError], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before a single byte of the request left: repeating cannot duplicate work."""

RETRYABLE_TRANSPORT: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Transport errors worth another try of an idempotent call (not e.g. ``UnsupportedProtocol``)."""

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client this process makes: each ``httpx.AsyncClient()``
    would otherwise build its own and load the CA bundle again (tens of ms per client at start)."""
    return httpx.create_ssl_context()


MAX_CONNECTIONS = 8
"""Requests one client has in flight at once (more wait their turn), and the connections it keeps.

Why a cap of our own in front of httpx's pool: with thousands of jobs in one process, httpx queues
the surplus inside its pool, and its pool rescans every queued request against every connection
(and asks the socket of each idle one whether it is still open) each time a request starts or
ends — a cost per request that grows with the jobs in flight, until requests time out waiting for
a connection. Here the surplus waits on a semaphore instead (not under the pool timeout), the pool
never queues, and it keeps every connection it opens (no open-close churn), so a request costs
the same at 10 concurrent jobs or 10,000. Eight, because every kept connection adds to each
request's cost (measured on loopback: ~1.3 ms of CPU per request with 2-8 connections, ~2.2 ms with
16); a caller that needs more requests in flight to a slow remote host passes ``max_connections``
(the adapters take it from ``[fal]``/``[wavespeed]`` ``max_requests_in_flight``: over a real link,
~100-300 ms a request, eight in flight is ~30-80 requests a second per provider)."""

UPLOAD_SLOTS = 4
"""Uploads (the requests that carry a file) one adapter has in flight at once, on a client of their
own. A presigned PUT of a large image over a slow link may take minutes (``UPLOAD_TIMEOUT``): on the
API client a handful of them would hold every slot, and every other job's polls, submits and
cancels to that provider would wait behind them. On their own client they wait only for each
other, and their connections (to storage hosts) are not in the API client's pool, so they add
nothing to the cost of an API request. Few, because an upload is bounded by the link, not by
round trips: more at once share the same bandwidth."""


class _Bounded(httpx.AsyncHTTPTransport):
    """httpx's transport with at most ``limit`` requests in flight: a slot is taken before the
    request goes to the pool and given back when its response is closed (a stream read to its
    end, or left early) or the request fails. Its pool keeps all ``limit`` connections."""

    def __init__(self, *, limit: int, **options: Any) -> None:
        super().__init__(limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit), **options)
        self._slots = asyncio.Semaphore(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._slots.acquire()
        try:
            response = await super().handle_async_request(request)
        except BaseException:
            self._slots.release()
            raise
        response.stream = _Releasing(response.stream, self._slots.release)
        return response


class _Releasing(httpx.AsyncByteStream):
    """A response body that gives its request's slot back once, when it is closed."""

    def __init__(self, stream: Any, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> Any:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._release is not None:
                self._release, release = None, self._release
                release()


def new_client(*, max_connections: int = MAX_CONNECTIONS, **options: Any) -> httpx.AsyncClient:
    """An httpx client on the shared TLS context, with at most ``max_connections`` requests in
    flight (see ``MAX_CONNECTIONS``)."""
    transport = _Bounded(limit=max_connections, verify=shared_ssl_context())
    return httpx.AsyncClient(transport=transport, **options)


UPLOAD_TIMEOUT = httpx.Timeout(300.0, connect=10.0)

ResponsePredicate = Callable[[httpx.Response, int], bool]
"""``(response, attempt) -> retry?``; ``attempt`` is 1 for the first try."""
ErrorPredicate = Callable[[httpx.TransportError], bool]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, shared by every retried call of an adapter.

    The delay before retry *n* (1-based) is ``d/2 + rng()*d/2`` with ``d = min(max_delay,
    base_delay * 2**(n-1))`` ("equal jitter": never zero, never in lockstep with other clients). A
    ``Retry-After`` longer than the backoff wins; one longer than ``max_retry_after`` ends the loop so
    the caller can reschedule instead of blocking a worker for minutes.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    result_attempts: int = 3
    """Tries of a fal result GET that answers 5xx: after COMPLETED that is usually the model's own
    answer (e.g. ``request_timeout``), which asking again will not change; a few tries cover the
    rarer gateway hiccup."""
    rng: Callable[[], float] = field(default=random.random, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.result_attempts < 1:
            raise ValueError("max_attempts and result_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, retry: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return ceiling / 2 + self.rng() * ceiling / 2

    def delay(self, retry: int, response: httpx.Response | None = None) -> float | None:
        """Seconds to wait before retry number ``retry``, or ``None`` to stop (Retry-After too long)."""
        wait = self.backoff(retry)
        hinted = retry_after(response) if response is not None else None
        if hinted is not None:
            if hinted > self.max_retry_after:
                return None
            wait = max(wait, hinted)
        return wait


class GaveUp(Exception):
    """The transport kept failing (or failed in a way not worth repeating); adapters word the error.

    Not a ``ProviderError``: whether the message must warn "the task may already exist" depends on
    the call, so each adapter turns this into its own ``Transient``.
    """

    def __init__(self, error: httpx.TransportError, attempts: int) -> None:
        super().__init__(f"{type(error).__name__} after {attempts} attempt(s)")
        self.error = error
        self.attempts = attempts

    @property
    def maybe_sent(self) -> bool:
        """Whether the server may have received the request (anything but a connect-phase failure)."""
        return not isinstance(self.error, NOT_SENT)

    @property
    def reason(self) -> str:
        """A short, key-free description such as "connection refused" or "read timed out"."""
        return describe_transport_error(self.error)


def attempts_of(response: httpx.Response) -> int:
    """How many tries ``send_with_retries`` made to get this response."""
    return int(response.extensions.get("videogen_attempts", 1))


async def send_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    retry_response: ResponsePredicate,
    retry_error: ErrorPredicate,
    strip_auth: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """Send one logical request, repeating it while the predicates say so and attempts remain.

    Returns the last response whatever its status (the caller maps non-2xx to an error), or raises
    ``GaveUp`` for a transport failure. ``strip_auth`` drops any ``Authorization`` header, also one a
    caller-supplied client adds by default: presigned upload URLs must never see a provider key.
    """
    attempt = 0
    while True:
        attempt += 1
        request = client.build_request(method, url, **kwargs)
        if strip_auth:
            request.headers.pop("Authorization", None)
        try:
            response = await client.send(request)
        except httpx.TransportError as exc:
            if attempt >= policy.max_attempts or not retry_error(exc):
                raise GaveUp(exc, attempt) from exc
            wait = policy.delay(attempt)
            log.info("%s %s failed (%s); retry %d in %.2fs", method, _safe_url(request.url),
                     describe_transport_error(exc), attempt, wait)
        else:
            response.extensions = {**response.extensions, "videogen_attempts": attempt}
            if attempt >= policy.max_attempts or not retry_response(response, attempt):
                return response
            wait = policy.delay(attempt, response)
            if wait is None:
                return response  # the server asked for a longer pause than we block for
            log.info("%s %s answered HTTP %d; retry %d in %.2fs", method, _safe_url(request.url),
                     response.status_code, attempt, wait)
        await policy.sleep(wait)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date), or ``None`` if absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_server_error(response: httpx.Response) -> bool:
    return response.status_code >= 500


def retry_idempotent(response: httpx.Response, attempt: int) -> bool:
    """For GET/PUT calls that may be repeated: rate limits, timeouts and server errors."""
    return response.status_code in (408, 429) or is_server_error(response)


def retry_rate_limit_only(response: httpx.Response, attempt: int) -> bool:
    """For submits: a 429 is a refusal before any work, so repeating it cannot duplicate a job."""
    return response.status_code == 429


def retry_any_transport(exc: httpx.TransportError) -> bool:
    return isinstance(exc, RETRYABLE_TRANSPORT)


def retry_unsent_only(exc: httpx.TransportError) -> bool:
    """For submits: only when the request certainly never reached the server."""
    return isinstance(exc, NOT_SENT)


def describe_transport_error(exc: httpx.TransportError) -> str:
    """A short human phrase for a transport error, never including headers."""
    phrases: tuple[tuple[type[httpx.TransportError], str], ...] = (
        (httpx.ConnectTimeout, "connecting timed out"),
        (httpx.ConnectError, "could not connect"),
        (httpx.PoolTimeout, "no free connection in the pool"),
        (httpx.ReadTimeout, "no reply in time (read timed out)"),
        (httpx.WriteTimeout, "sending the request timed out"),
        (httpx.RemoteProtocolError, "the server closed the connection without a complete reply"),
        (httpx.ReadError, "the connection broke while reading the reply"),
        (httpx.WriteError, "the connection broke while sending the request"),
        (httpx.UnsupportedProtocol, "the URL's scheme is not http or https"),
        (httpx.ProxyError, "the proxy refused the connection"),
    )
    for kind, phrase in phrases:
        if isinstance(exc, kind):
            return phrase
    return type(exc).__name__


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body, or ``None`` when there is none or it is not JSON (e.g. a gateway page)."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def reveal_key(key: SecretStr | str | None, *, provider: str, setting: str) -> str:
    """The key as a header-safe string, or ``AuthenticationFailed`` naming where to set it.

    Validated up front because an illegal header value makes the HTTP stack raise an error that
    quotes the whole header, key included.
    """
    raw = key.get_secret_value() if isinstance(key, SecretStr) else (key or "")
    raw = raw.strip()
    if not raw:
        raise AuthenticationFailed(f"No {provider} API key is configured; set {setting}.", provider=provider)
    if not _HEADER_SAFE.fullmatch(raw):
        raise AuthenticationFailed(
            f"The {provider} API key contains spaces or non-ASCII characters, so it cannot be sent; "
            f"copy it again into {setting}.", provider=provider)
    return raw


class Redactor:
    """Removes a key (and, for ``id:secret`` keys, each half) from text shown to people.

    Providers sometimes echo request headers in error bodies; every message built from provider text
    passes through here before it becomes an exception.
    """

    MASK = "[redacted]"

    def __init__(self, key: str) -> None:
        parts = {key, *(p for p in key.split(":") if len(p) >= 8)}
        self._secrets = sorted((p for p in parts if p), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, self.MASK)
        return text

    def error(self, error: ProviderError) -> ProviderError:
        """The same error with the key removed from its message (a new instance only if needed)."""
        clean = self(error.message)
        error_type = self(error.error_type) if error.error_type else error.error_type
        if clean == error.message and error_type == error.error_type:
            return error
        return type(error)(clean, provider=error.provider, status_code=error.status_code,
                           error_type=error_type, retry_after=error.retry_after, retryable=error.retryable)

    def __repr__(self) -> str:
        return "Redactor(...)"


_TAG = re.compile(r"<[^>]*>")


def excerpt(value: Any, limit: int = 300) -> str:
    """Provider text cut to something readable in a chat message (gateway HTML reduced to its words)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if text.lstrip().startswith("<"):
        text = _TAG.sub(" ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence(text: str) -> str:
    """``text`` ending in a full stop, so quoted provider text does not run into our next sentence."""
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def same_origin(url: str, base: str) -> bool:
    """Whether ``url`` is on the scheme/host/port of ``base``; keys are only ever sent there."""
    try:
        a, b = httpx.URL(url), httpx.URL(base)
    except (httpx.InvalidURL, TypeError):
        return False
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port) and a.scheme in ("http", "https")


def _safe_url(url: httpx.URL) -> str:
    """The URL without its query string: logs need the route, not ``logs=1`` or signed tokens."""
    return str(url.copy_with(query=None))


def first_text(values: Iterable[Any]) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


async def read_upload(path: Path, *, provider: str, max_bytes: int | None = None) -> bytes:
    """A local file's bytes for an upload; size checked before reading, OS errors as ``InvalidInput``."""
    path = Path(path)

    def read() -> bytes:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise InvalidInput(
                f"{path.name} is larger than {max_bytes // (1024 * 1024)} MiB, the most {provider} uploads "
                "accept here; pass a public URL to the file instead.", provider=provider)
        return path.read_bytes()

    try:
        return await asyncio.to_thread(read)
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist; nothing to upload.", provider=provider) from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a file; nothing to upload.", provider=provider) from None
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read ({exc.strerror}); nothing was uploaded.",
                           provider=provider) from None


class KeyedClient:
    """What both adapters share: the key as an ``Authorization`` header that never reaches text,
    the httpx clients they own (or one given to them), the retry loop, and what giving up means.

    Two clients, each made on first use: ``_client`` for the API calls (submit, status, result,
    cancel, and the small JSON calls that start an upload) with at most ``max_requests_in_flight``
    requests in flight, and ``_upload_client`` for the requests that carry a file, with at most
    ``UPLOAD_SLOTS``, so slow uploads can never hold the slots of API calls. A client given by the
    caller (tests, benches, an embedding application) carries both kinds: the caller chose its
    limits, and the adapter does not make a second client it would have to own and close.

    Subclasses set ``provider`` (the id), ``label`` (how messages name it) and ``submit_maybe``
    (how a submit that may have reached the server is explained after "…was sent (reason)").
    """

    provider: str
    label: str
    submit_maybe: str

    def __init__(self, key: SecretStr | str, *, scheme: str, key_setting: str,
                 client: httpx.AsyncClient | None, retry: RetryPolicy | None,
                 max_requests_in_flight: int | None = None) -> None:
        if client is not None and max_requests_in_flight is not None:
            raise ValueError("max_requests_in_flight caps the client the adapter makes; a given client "
                             "keeps its own limits, so pass one or the other")
        if max_requests_in_flight is not None and max_requests_in_flight < 1:
            raise ValueError("max_requests_in_flight must be at least 1 (no request could ever start)")
        key_text = reveal_key(key, provider=self.label, setting=key_setting)
        self._auth = SecretStr(f"{scheme} {key_text}")
        self._redact = Redactor(key_text)
        self._http = client
        self._upload_http = client
        self._owns_client = client is None
        self.max_requests_in_flight = max_requests_in_flight or MAX_CONNECTIONS
        self.retry = retry or RetryPolicy()

    @property
    def _client(self) -> httpx.AsyncClient:
        """The API client, made on first use: a server that never calls this provider never builds one."""
        if self._http is None:
            self._http = new_client(max_connections=self.max_requests_in_flight, timeout=DEFAULT_TIMEOUT)
        return self._http

    @property
    def _upload_client(self) -> httpx.AsyncClient:
        """The client of the file-carrying requests (see ``UPLOAD_SLOTS``), made on the first upload."""
        if self._upload_http is None:
            self._upload_http = new_client(max_connections=UPLOAD_SLOTS, timeout=UPLOAD_TIMEOUT)
        return self._upload_http

    async def aclose(self) -> None:
        if not self._owns_client:
            return
        try:
            if self._http is not None:
                await self._http.aclose()
        finally:
            if self._upload_http is not None:
                await self._upload_http.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, method: str, url: str, *, what: str, retry_response: ResponsePredicate,
                    retry_error: ErrorPredicate, carries_file: bool = False, **kwargs: Any) -> httpx.Response:
        """A keyed call to the provider; ``carries_file`` sends it on the upload client."""
        headers = {"Authorization": self._auth.get_secret_value(), "Accept": "application/json"}
        client = self._upload_client if carries_file else self._client
        try:
            return await send_with_retries(client, method, url, policy=self.retry,
                                           retry_response=retry_response, retry_error=retry_error,
                                           headers=headers, **kwargs)
        except GaveUp as exc:
            if what == "submit" and exc.maybe_sent:
                raise Transient(f"The connection to {self.label} failed after the submit was sent ({exc.reason})"
                                + self.submit_maybe, provider=self.provider, error_type=SUBMIT_OUTCOME_UNKNOWN,
                                retryable=False) from exc.error
            raise Transient(f"The {what} call to {self.label} failed: {exc.reason} ({exc.attempts} attempt(s)). "
                            "Check the network and try again.", provider=self.provider) from exc.error
