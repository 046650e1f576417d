"""WaveSpeed AI's v3 API (docs/providers.md §2), served under ``/wavespeed``.

``/wavespeed`` stands in for ``https://api.wavespeed.ai``; below it the paths are WaveSpeed's own
(``/api/v3/{model}``, ``/api/v3/predictions/{id}[/result]``, ``/api/v3/media/uploads``,
``/api/v3/media/upload/binary``, ``/api/v3/balance``). Every JSON answer is the
``{code, message, data}`` envelope, and a failed prediction is HTTP 200 with envelope code 200 and
``data.status: "failed"`` — the trap §4.11 warns about. There is no cancel endpoint, as in the real
API. A ``broke…`` key can read predictions and upload but every submit answers "insufficient
balance" (``SimSettings.wavespeed_low_balance_status``, 402 by default: the real code is unknown).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .billing import wavespeed_usage
from .core import ROUTE, KeyVerdict
from .fal import NGINX_503
from .jobs import Job, Phase
from .scenarios import MarkerError, Outcome, parse

if TYPE_CHECKING:
    from .core import SimCore

FAILURES: dict[Outcome, tuple[int, str]] = {
    Outcome.CONTENT_POLICY: (1200, "Content moderation: the input or output was flagged as sensitive."),
    Outcome.INVALID: (1401, "Invalid parameter: prompt (simulated)."),
    Outcome.DETAIL_STRING: (1400, "Missing parameter: prompt (simulated)."),
    Outcome.MEDIA_ERROR: (1402, "Failed to download image from the provided URL."),
    Outcome.SERVER_ERROR: (5000, "Internal error (simulated)."),
    Outcome.TIMEOUT: (5004, "Timeout: the task did not finish in time."),
    Outcome.USER_TIMEOUT: (5004, "Timeout: the task did not start in time."),
    Outcome.STATUS_ERROR: (1403, "Task execution failed (simulated)."),
}
RESERVED = ("predictions", "media", "model", "models", "balance", "webhook", "account")


def envelope(data: Any, status: int = 200) -> web.Response:
    return web.json_response({"code": 200, "message": "success", "data": data}, status=status)


def refusal(status: int, message: str, code: int | None = None, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code or status, "message": message}, status=status, headers=headers)


def media_type(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "file"


class WaveSpeedRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    def register(self, app: web.Application) -> None:
        app.router.add_route("*", "/wavespeed/api/v3/{tail:.*}", self.dispatch)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"].strip("/")
        parts = tail.split("/")
        method = request.method
        if parts[0] == "predictions" and len(parts) in (2, 3) and (len(parts) == 2 or parts[2] == "result"):
            route, allowed, handler = "wavespeed.prediction", "GET", self.prediction
        elif tail == "media/uploads":
            route, allowed, handler = "wavespeed.upload_ticket", "POST", self.upload_ticket
        elif tail == "media/upload/binary":
            route, allowed, handler = "wavespeed.upload_binary", "POST", self.upload_binary
        elif tail == "balance":
            route, allowed, handler = "wavespeed.balance", "GET", self.balance
        elif tail == "webhook/secret":
            route, allowed, handler = "wavespeed.webhook_secret", "GET", self.webhook_secret
        elif tail == "account/usage":
            route, allowed, handler = "wavespeed.usage", "GET", self.usage
        elif parts[0] not in RESERVED and len(parts) >= 2 and all(parts):
            route, allowed, handler = "wavespeed.submit", "POST", self.submit
        else:
            request[ROUTE] = "wavespeed.not_found"
            return refusal(404, "not found")
        request[ROUTE] = route
        if method != allowed:
            return refusal(405, "method not allowed", headers={"Allow": allowed})
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        verdict = self.core.judge_key(key.strip()) if scheme == "Bearer" else KeyVerdict.MISSING
        if verdict in (KeyVerdict.MISSING, KeyVerdict.BAD):
            return refusal(401, "Unauthorized")
        return await handler(request, parts, verdict == KeyVerdict.BROKE)

    # -- predictions ------------------------------------------------------------------------------
    def _result_url(self, job_id: str) -> str:
        return f"{self.core.base_url}/wavespeed/api/v3/predictions/{job_id}/result"

    async def submit(self, request: web.Request, parts: list[str], broke: bool) -> web.Response:
        model = "/".join(parts)
        kind = self.core.output_kind(model)
        if kind is None:
            return refusal(404, f"model {model} not found")
        if broke:
            status = self.core.settings.wavespeed_low_balance_status
            return refusal(status, "insufficient balance")
        try:
            payload = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return refusal(400, "invalid JSON body")
        if not isinstance(payload, dict):
            return refusal(400, "request body must be a JSON object")
        try:
            scenario = parse(payload.get("prompt"), self.core.settings, self.core.rng)
        except MarkerError as exc:
            return refusal(400, str(exc))
        how = scenario.refusal("wavespeed")
        if how == "429":
            return refusal(429, "rate limit exceeded", headers={"Retry-After": "120"})
        if how == "503":
            return web.Response(status=503, text=NGINX_503, content_type="text/html")
        if how == "500":
            return refusal(500, "internal server error")
        if how == "locked":
            return refusal(self.core.settings.wavespeed_low_balance_status, "insufficient balance")
        if scenario.rate_limit or self.core.settings.rate_limit or self.core.submit_rate_limited("wavespeed"):
            return refusal(429, "rate limit exceeded", headers={"Retry-After": "1"})
        job_id = self.core.new_prediction_id()
        job = Job(id=job_id, provider="wavespeed", endpoint_id=model, app_base=model, input=payload,
                  scenario=scenario, output_kind=kind, seed=self.core.new_seed(payload.get("seed")),
                  submitted=self.core.now(), submitted_wall=self.core.wall_now(),
                  queue_seconds=self.core.settings.queue_seconds, flaky_left=scenario.flaky_polls,
                  urls={"get": self._result_url(job_id)}, webhook=request.query.get("webhook"))
        self.core.add_job(job)
        self.core.callbacks.schedule(job, lambda: self._callback_body(job))
        if payload.get("enable_sync_mode") is True:
            return await self._wait_sync(job)
        return envelope(self.prediction_data(job))

    async def _wait_sync(self, job: Job) -> web.Response:
        """Sync mode: hold the request until the prediction ends, or give up like the gateway (504)."""
        limit = self.core.now() + self.core.settings.sync_timeout_seconds
        while job.snapshot(self.core.now()).phase is not Phase.DONE:
            if self.core.now() >= limit:
                return web.Response(status=504, text="504 Gateway Time-out", content_type="text/html")
            await asyncio.sleep(0.02)
        return envelope(self.prediction_data(job))

    def prediction_data(self, job: Job) -> dict[str, Any]:
        snap = job.snapshot(self.core.now())
        data: dict[str, Any] = {
            "id": job.id, "model": job.endpoint_id, "input": job.input, "outputs": [], "urls": dict(job.urls),
            "has_nsfw_contents": [], "status": "created", "created_at": job.iso(job.submitted), "error": "",
            "timings": {"inference": 0},
        }
        if snap.phase is Phase.RUNNING:
            data["status"] = "processing"
        elif snap.phase is Phase.DONE:
            failure = FAILURES.get(job.outcome)
            if snap.started_at is not None and snap.finished_at is not None:
                data["timings"] = {"inference": int(round((snap.finished_at - snap.started_at) * 1000))}
            if failure:
                code, message = failure
                if job.outcome is Outcome.SERVER_ERROR and job.scenario.status_code == 503:
                    code, message = 5003, "Service unavailable (simulated)."
                data.update(status="failed", code=code, error=message)
            else:
                data.update(status="completed", outputs=self.outputs(job))
                data["has_nsfw_contents"] = [job.scenario.nsfw] * len(data["outputs"])
        return data

    def outputs(self, job: Job) -> list[str]:
        if job.output_kind == "images":
            width, height = _size(job.input.get("size"))
            spec = self.core.output_spec(job, width, height)
            return [self.core.output_url(spec, f"{job.id}.png")]
        return [self.core.output_url(self.core.output_spec(job), f"{job.id}.mp4")]

    async def prediction(self, request: web.Request, parts: list[str], broke: bool) -> web.Response:
        job = self.core.jobs.get(parts[1])
        if job is None or job.provider != "wavespeed":
            return refusal(404, "prediction not found")
        if job.take_flaky():
            return web.Response(status=503, text=NGINX_503, content_type="text/html")
        return envelope(self.prediction_data(job))

    async def usage(self, request: web.Request, parts: list[str], broke: bool) -> web.Response:
        """The account's billing per model over ``start_date``..``end_date`` (UTC days), see ``billing.py``."""
        try:
            return envelope(wavespeed_usage(self.core, request.query.get("start_date"), request.query.get("end_date")))
        except ValueError:
            return refusal(400, "start_date and end_date must be YYYY-MM-DD")

    async def _callback_body(self, job: Job) -> dict[str, Any]:
        """The bare prediction, without the envelope, as WaveSpeed posts it (docs §2.4)."""
        return self.prediction_data(job)

    async def webhook_secret(self, request: web.Request, parts: list[str], broke: bool) -> web.Response:
        return envelope({"secret": self.core.callbacks.wavespeed_secret})

    async def balance(self, request: web.Request, parts: list[str], broke: bool) -> web.Response:
        return envelope({"balance": 0.0 if broke else 100.0})

    # -- uploads ------------------------------------------------------------------------------
    async def upload_ticket(self, request: web.Request, parts: list[str], broke: bool) -> web.Response:
        """The current flow: a ticket naming a presigned PUT, so bytes bypass the API gateway."""
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return refusal(400, "invalid JSON body")
        if not isinstance(body, dict):
            return refusal(400, "request body must be a JSON object")
        filename, size = body.get("filename"), body.get("size")
        if not isinstance(filename, str) or not filename or not isinstance(size, int) or size < 0:
            return refusal(400, "filename (string) and size (bytes) are required")
        if size > self.core.settings.max_upload_bytes:
            return refusal(413, "file too large")
        content_type = body.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = {"Content-Type": content_type, "If-None-Match": "*"}
        upload = self.core.uploads.create(file_name=filename, content_type=content_type, required_headers=headers,
                                          declared_size=size)
        return envelope({"type": media_type(content_type),
                         "download_url": self.core.file_url(upload.token, upload.file_name),
                         "filename": filename, "size": size,
                         "upload": {"method": "PUT", "url": self.core.upload_url(upload), "headers": headers}})

    async def upload_binary(self, request: web.Request, parts: list[str], broke: bool) -> web.Response:
        """The legacy flow: multipart field ``file`` straight to the API."""
        if not request.content_type.startswith("multipart/"):
            return refusal(400, "multipart/form-data with a 'file' field is required")
        form = await request.post()
        field = form.get("file")
        if not isinstance(field, web.FileField):
            return refusal(400, "file is required")
        data = field.file.read()
        if len(data) > self.core.settings.max_upload_bytes:
            return refusal(413, "file too large")
        filename = field.filename or "upload.bin"
        content_type = (field.content_type if field.content_type not in (None, "", "application/octet-stream")
                        else mimetypes.guess_type(filename)[0]) or "application/octet-stream"
        upload = self.core.uploads.create(file_name=filename, content_type=content_type, data=data)
        return envelope({"type": media_type(content_type),
                         "download_url": self.core.file_url(upload.token, upload.file_name),
                         "filename": filename, "size": len(data)})


def _size(value: object) -> tuple[int, int]:
    """WaveSpeed's ``size`` is ``"W*H"``; anything else falls back to 1024×1024."""
    if isinstance(value, str) and "*" in value:
        w, _, h = value.partition("*")
        if w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0:
            return int(w), int(h)
    return 1024, 1024
