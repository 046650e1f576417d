"""fal.ai's queue and storage protocol (docs/providers.md §1), served under ``/fal/``.

``/fal/queue`` stands in for ``https://queue.fal.run``, ``/fal/rest`` for ``https://rest.fal.ai``
and ``/fal/cdn`` for ``https://v3.fal.media``. Below each base the paths are fal's own:

- ``POST {queue}/{owner}/{app}/{path…}`` submits to the full endpoint id;
- ``GET {queue}/{owner}/{app}/requests/{id}/status`` (and ``/status/stream``), ``GET …/requests/{id}``
  and ``PUT …/requests/{id}/cancel`` use only ``[namespace/]owner/app``. The same routes *with* the
  endpoint's sub-path answer 404, so a client that builds URLs from the full id is caught.

Every quirk a client must survive is reproduced: 202 while pending and 200 when COMPLETED,
failures that are COMPLETED and surface as the result's status code, a ``logs`` key that is always
present, cancel by PUT only, and presigned upload PUTs that refuse an ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .core import ROUTE, KeyVerdict, new_request_id, new_token
from .jobs import Job, Phase
from .scenarios import MarkerError, Outcome, parse

if TYPE_CHECKING:
    from .core import SimCore

NAMESPACES = ("workflows", "comfy")
STORAGE_TYPES = ("fal-cdn-v3", "fal-cdn", "gcs")
LOCKED = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing"
BAD_FORMAT = "Invalid Key Authorization header format. Expected 'Key <key_id>:<key_secret>'."
NGINX_503 = ("<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
             "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
             "</body>\r\n</html>\r\n")

IMAGE_PRESETS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576),
}


@dataclass(frozen=True)
class AppPath:
    """An endpoint id split the way fal-client's ``AppId.from_endpoint_id`` does."""

    namespace: str | None
    owner: str
    app: str
    path: tuple[str, ...]

    @property
    def base(self) -> str:
        return "/".join(p for p in (self.namespace, self.owner, self.app) if p)

    @property
    def endpoint_id(self) -> str:
        return "/".join((self.base, *self.path))


def split_endpoint(segments: list[str]) -> AppPath | None:
    """``[ns/]owner/app[/path…]`` → parts; ``123-myapp`` → ``123/myapp``; anything else → None."""
    namespace = None
    if segments and segments[0] in NAMESPACES:
        namespace, segments = segments[0], segments[1:]
    if len(segments) == 1 and re.fullmatch(r"\d+-[\w.-]+", segments[0]):
        owner, app = segments[0].split("-", 1)
        return AppPath(namespace, owner, app, ())
    if len(segments) < 2 or not all(segments):
        return None
    return AppPath(namespace, segments[0], segments[1], tuple(segments[2:]))


def detail(status: int, message: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": message}, status=status, headers=headers)


def error_list(kind: str, msg: str, loc: list[str], **extra: Any) -> list[dict[str, Any]]:
    item = {"loc": loc, "msg": msg, "type": kind, "url": f"https://docs.fal.ai/errors#{kind}", "ctx": {}}
    item.update(extra)
    return [item]


def _typed_error(status: int, message: str, error_type: str, request_id: str,
                 extra_headers: dict[str, str] | None = None) -> web.Response:
    headers = {"X-Fal-Error-Type": error_type, "X-Fal-Request-Id": request_id, **(extra_headers or {})}
    return web.json_response({"detail": message, "error_type": error_type}, status=status, headers=headers)


class FalRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self._cdn_tokens: set[str] = set()

    def register(self, app: web.Application) -> None:
        app.router.add_post("/fal/rest/storage/upload/initiate", self.initiate_upload)
        app.router.add_post("/fal/rest/storage/auth/token", self.storage_token)
        app.router.add_post("/fal/cdn/files/upload", self.cdn_upload)
        app.router.add_get("/fal/rest/.well-known/jwks.json", self.jwks)
        app.router.add_route("*", "/fal/queue/{tail:.*}", self.queue)

    # -- auth ---------------------------------------------------------------------------------
    def _auth(self, request: web.Request) -> web.Response | None:
        """None if the ``Key`` header names a usable account, else fal's 401/403 answer."""
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if not header:
            return detail(401, "Missing Authorization header. Send 'Authorization: Key <FAL_KEY>'.")
        if scheme != "Key" or not key.strip():
            return detail(401, BAD_FORMAT)
        verdict = self.core.judge_key(key.strip())
        if verdict == KeyVerdict.BAD:
            return detail(401, "No user found for Key ID and Secret")
        if verdict == KeyVerdict.BROKE:
            return detail(403, LOCKED)
        return None

    # -- the queue ----------------------------------------------------------------------------
    def _urls(self, app: AppPath, request_id: str) -> dict[str, str]:
        base = f"{self.core.base_url}/fal/queue/{app.base}/requests/{request_id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    async def queue(self, request: web.Request) -> web.StreamResponse:
        """Dispatch on fal's path grammar: aiohttp cannot express "owner/app only" by itself."""
        segments = request.match_info["tail"].split("/")
        idx = next((i for i, s in enumerate(segments) if s == "requests" and i >= 1 and i + 1 < len(segments)),
                   None)
        if idx is None:
            request[ROUTE] = "fal.submit"
            if request.method != "POST":
                return detail(405, "Method Not Allowed", {"Allow": "POST"})
            return self._auth(request) or await self.submit(request, segments)
        prefix, request_id, action = segments[:idx], segments[idx + 1], tuple(segments[idx + 2:])
        routes = {(): ("fal.result", "GET", self.result), ("status",): ("fal.status", "GET", self.status),
                  ("status", "stream"): ("fal.status_stream", "GET", self.stream),
                  ("cancel",): ("fal.cancel", "PUT", self.cancel)}
        app = split_endpoint(prefix)
        if action not in routes or app is None:
            request[ROUTE] = "fal.bad_url"
            return detail(404, "Not Found")
        name, method, handler = routes[action]
        request[ROUTE] = name
        if app.path:
            request[ROUTE] = "fal.bad_url"
            good = f"{self.core.base_url}/fal/queue/{app.base}/requests/{request_id}" + "".join(
                f"/{a}" for a in action)
            return detail(404, f"Not Found: request URLs use only the app ({app.base}), not the endpoint path; "
                               f"use the URLs returned at submit, e.g. {good}")
        if request.method != method:
            return detail(405, "Method Not Allowed", {"Allow": method})
        denied = self._auth(request)
        if denied:
            return denied
        job = self.core.jobs.get(request_id)
        if job is None or job.provider != "fal" or job.app_base != app.base:
            if action == ("cancel",):
                return web.json_response({"status": "NOT_FOUND"}, status=404)
            return detail(404, "Request not found")
        return await handler(request, job)

    async def submit(self, request: web.Request, segments: list[str]) -> web.Response:
        app = split_endpoint(segments)
        if app is None:
            return detail(404, f"Invalid app id: {'/'.join(segments)!r}; expected owner/app[/path]")
        kind = self.core.output_kind(app.endpoint_id)
        if kind is None:
            return detail(404, f"Application '{app.endpoint_id}' not found")
        try:
            payload = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return detail(400, "Request body must be JSON")
        if not isinstance(payload, dict):
            return detail(422, error_list("model_attributes_type", "Input should be an object", ["body"]))
        try:
            scenario = parse(payload.get("prompt"), self.core.settings, self.core.rng)
        except MarkerError as exc:
            return detail(422, error_list("value_error", str(exc), ["body", "prompt"]))
        refused = self._refusal(scenario.refusal("fal"))
        if refused is not None:
            return refused
        if scenario.rate_limit or self.core.settings.rate_limit or self.core.submit_rate_limited("fal"):
            return detail(429, "Rate limit exceeded. Please slow down.", {"Retry-After": "1"})
        deadline = None
        if "X-Fal-Request-Timeout" in request.headers:
            try:
                deadline = float(request.headers["X-Fal-Request-Timeout"])
            except ValueError:
                return detail(400, "X-Fal-Request-Timeout must be a number of seconds")
        request_id = new_request_id()
        job = Job(id=request_id, provider="fal", endpoint_id=app.endpoint_id, app_base=app.base, input=payload,
                  scenario=scenario, output_kind=kind, seed=self.core.new_seed(payload.get("seed")),
                  submitted=self.core.now(), submitted_wall=self.core.wall_now(), start_deadline=deadline,
                  queue_seconds=self.core.settings.queue_seconds, cancel_seconds=self.core.settings.cancel_seconds,
                  flaky_left=scenario.flaky_polls, urls=self._urls(app, request_id))
        job.webhook = request.query.get("fal_webhook")
        self.core.add_job(job)
        self.core.callbacks.schedule(job, lambda: self.callback_body(job))
        return web.json_response({"status": "IN_QUEUE", "request_id": request_id, **job.urls,
                                  "queue_position": scenario.queue_position})

    @staticmethod
    def _refusal(how: str | None) -> web.Response | None:
        """A scripted refusal of one submit (``[sim:fal_refuse=R]``); nothing is queued."""
        if how == "429":
            return detail(429, "Rate limit exceeded. Please slow down.", {"Retry-After": "120"})
        if how == "503":  # the ingress, not the queue: an HTML page and no request id
            return web.Response(status=503, text=NGINX_503, content_type="text/html")
        if how == "500":  # the queue answered: it has a request id, so the request may exist
            return _typed_error(500, "Internal server error", "internal_error", new_request_id())
        if how == "locked":
            return detail(403, LOCKED)
        return None

    async def jwks(self, request: web.Request) -> web.Response:
        request[ROUTE] = "fal.jwks"
        return web.json_response(self.core.callbacks.jwks())

    async def callback_body(self, job: Job) -> dict[str, Any]:
        """fal's callback body: the result's JSON as ``payload``, or its error (docs §1.9)."""
        answer = await self.result_response(job)
        payload = json.loads(answer.text) if answer.text else None
        base = {"request_id": job.id, "gateway_request_id": job.id}
        if answer.status == 200:
            return {**base, "status": "OK", "payload": payload, "error": None}
        return {**base, "status": "ERROR", "payload": payload, "error": f"Invalid status code: {answer.status}"}

    def status_body(self, job: Job, with_logs: bool) -> tuple[int, dict[str, Any]]:
        now = self.core.now()
        snap = job.snapshot(now)
        body: dict[str, Any] = {"request_id": job.id, **job.urls, "logs": None, "metrics": {}}
        if snap.phase is Phase.QUEUED:
            return 202, {"status": "IN_QUEUE", "queue_position": snap.queue_position, **body}
        if with_logs:
            body["logs"] = [{"message": msg, "level": "INFO", "source": "USER", "timestamp": job.iso(at)}
                            for at, msg in job.log_lines(now, self.core.settings.log_steps)]
        if snap.phase is Phase.RUNNING:
            return 202, {"status": "IN_PROGRESS", **body}
        if snap.started_at is not None and snap.finished_at is not None and not snap.cancelled:
            body["metrics"] = {"inference_time": round(snap.finished_at - snap.started_at, 3)}
        if not snap.cancelled:
            if job.outcome in (Outcome.TIMEOUT, Outcome.USER_TIMEOUT):
                body.update(error="Request timed out", error_type="request_timeout")
            elif job.outcome is Outcome.STATUS_ERROR:
                body.update(error="Internal error while running the model", error_type="internal_error")
        return 200, {"status": "COMPLETED", **body}

    async def status(self, request: web.Request, job: Job) -> web.Response:
        if job.take_flaky():
            return web.Response(status=503, text=NGINX_503, content_type="text/html")
        code, body = self.status_body(job, request.query.get("logs", "").lower() in ("1", "true"))
        return web.json_response(body, status=code)

    async def stream(self, request: web.Request, job: Job) -> web.StreamResponse:
        """Server-sent events: one ``data:`` line per change of the status, closed after COMPLETED."""
        with_logs = request.query.get("logs", "").lower() in ("1", "true")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        last = ""
        while True:
            _, body = self.status_body(job, with_logs)
            text = json.dumps(body)
            if text != last:
                await response.write(f"data: {text}\n\n".encode())
                last = text
            if body["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    async def result(self, request: web.Request, job: Job) -> web.Response:
        return await self.result_response(job)

    async def result_response(self, job: Job) -> web.Response:
        snap = job.snapshot(self.core.now())
        if snap.phase is not Phase.DONE:
            return detail(400, "Request is still in progress")
        rid = job.id
        if snap.cancelled:
            return _typed_error(499, "Request cancelled", "client_cancelled", rid)
        outcome = job.outcome
        headers = {"X-Fal-Request-Id": rid}
        if outcome is Outcome.CONTENT_POLICY:
            return detail(422, error_list(
                "content_policy_violation",
                "The content could not be processed because it contained material flagged by a content checker.",
                ["body", "prompt"], input={}), {**headers, "X-Fal-Retryable": "false"})
        if outcome is Outcome.INVALID:
            return detail(422, error_list("value_error", "Input is invalid for this model (simulated).",
                                          ["body", "prompt"]), headers)
        if outcome is Outcome.DETAIL_STRING:
            return detail(422, "Invalid input: the prompt could not be processed (simulated).", headers)
        if outcome is Outcome.MEDIA_ERROR:
            field = next((k for k in job.input if k.endswith(("image_url", "image_urls", "video_url"))), "image_url")
            return detail(422, error_list(
                "file_download_error",
                "Failed to download the file. Please check if the URL is accessible and try again.",
                ["body", field]), headers)
        if outcome is Outcome.SERVER_ERROR:
            if job.scenario.status_code == 503:
                return _typed_error(503, "Runner scheduling failure", "runner_scheduling_failure", rid)
            return _typed_error(500, "Internal server error in the runner (simulated)", "runner_server_error", rid)
        if outcome is Outcome.TIMEOUT:
            return _typed_error(504, "Request timed out", "request_timeout", rid)
        if outcome is Outcome.USER_TIMEOUT:
            return _typed_error(504, "Request timed out before it started", "request_timeout", rid,
                                {"X-Fal-Request-Timeout-Type": "user"})
        if outcome is Outcome.STATUS_ERROR:
            return _typed_error(500, "Internal error while running the model", "internal_error", rid)
        try:
            output = await self.output(job)
        except ValueError as exc:
            return detail(422, error_list("value_error", str(exc), ["body", "image_size"]), headers)
        return web.json_response(output, headers=headers)

    async def output(self, job: Job) -> dict[str, Any]:
        """The model's output JSON, pointing at real files on this server."""
        short = job.id.split("-")[0]
        if job.output_kind == "images":
            width, height = image_size(job.input.get("image_size"))
            count = job.input.get("num_images", 1)
            if not isinstance(count, int) or not 1 <= count <= 8:
                raise ValueError("num_images must be an integer from 1 to 4")
            spec = self.core.output_spec(job, width, height)
            await self.core.output_size(spec)
            images = [{"url": self.core.output_url(spec, f"sim_{short}_{i}.png"), "width": width, "height": height,
                       "content_type": "image/png"} for i in range(count)]
            flags = {"has_nsfw_concepts": [job.scenario.nsfw] * count}
            return {"images": images, "seed": job.seed, **flags}
        spec = self.core.output_spec(job)
        name = f"sim_{short}.mp4"
        video = {"url": self.core.output_url(spec, name), "content_type": "video/mp4", "file_name": name,
                 "file_size": await self.core.output_size(spec)}
        output: dict[str, Any] = {"video": video, "seed": job.seed}
        if job.scenario.nsfw:
            output["has_nsfw_concepts"] = [True]
        if job.endpoint_id.startswith("fal-ai/sora-2"):
            output["video_id"] = f"video_{job.id.replace('-', '')}"
        return output

    async def cancel(self, request: web.Request, job: Job) -> web.Response:
        now = self.core.now()
        if job.snapshot(now).phase is Phase.DONE:
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        if job.cancel_requested is None:
            job.cancel_requested = now
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

    # -- storage ------------------------------------------------------------------------------
    async def initiate_upload(self, request: web.Request) -> web.Response:
        request[ROUTE] = "fal.storage_initiate"
        denied = self._auth(request)
        if denied:
            return denied
        storage_type = request.query.get("storage_type", "fal-cdn-v3")
        if storage_type not in STORAGE_TYPES:
            return detail(400, f"Unsupported storage_type {storage_type!r}")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return detail(400, "Request body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("content_type"), str):
            return detail(422, error_list("missing", "Field required", ["body", "content_type"]))
        file_name = body.get("file_name") if isinstance(body.get("file_name"), str) else "upload.bin"
        upload = self.core.uploads.create(file_name=file_name, content_type=body["content_type"])
        return web.json_response({"upload_url": self.core.upload_url(upload),
                                  "file_url": self.core.file_url(upload.token, upload.file_name)})

    async def storage_token(self, request: web.Request) -> web.Response:
        """fal-client (Python)'s default: a short-lived CDN token, then ``POST {base_url}/files/upload``."""
        request[ROUTE] = "fal.storage_token"
        denied = self._auth(request)
        if denied:
            return denied
        token = new_token()
        self._cdn_tokens.add(token)
        expires = self.core.wall_now() + 3600
        stamp = dt.datetime.fromtimestamp(expires, dt.UTC).isoformat().replace("+00:00", "Z")
        return web.json_response({"token": token, "token_type": "Bearer", "base_url": f"{self.core.base_url}/fal/cdn",
                                  "expires_at": stamp})

    async def cdn_upload(self, request: web.Request) -> web.Response:
        request[ROUTE] = "fal.cdn_upload"
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._cdn_tokens:
            return detail(401, "Invalid or missing CDN token; get one from /storage/auth/token")
        data = await request.read()
        name = request.headers.get("X-Fal-File-Name") or "upload.bin"
        upload = self.core.uploads.create(file_name=name, data=data,
                                          content_type=request.headers.get("Content-Type", "application/octet-stream"))
        return web.json_response({"access_url": self.core.file_url(upload.token, upload.file_name)})


def image_size(value: object) -> tuple[int, int]:
    """fal's ``image_size``: a preset name or ``{"width", "height"}``; default ``square_hd``."""
    if value is None:
        return IMAGE_PRESETS["square_hd"]
    if isinstance(value, str):
        if value not in IMAGE_PRESETS:
            raise ValueError(f"image_size must be one of {', '.join(IMAGE_PRESETS)} or {{width, height}}")
        return IMAGE_PRESETS[value]
    if isinstance(value, dict):
        width, height = value.get("width", 512), value.get("height", 512)
        if all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 14142 for v in (width, height)):
            return width, height
    raise ValueError("image_size needs positive integer width and height")
