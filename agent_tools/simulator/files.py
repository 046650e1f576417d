"""The simulator's storage: presigned upload URLs and the ``/files/…`` URLs that serve bytes.

Both providers hand out upload URLs that behave like cloud-storage presigned URLs: the signature
is in the query string (a client that drops it gets 403), the request must not carry an
``Authorization`` header (400, as S3/GCS answer when two auth mechanisms are mixed), and headers the
ticket listed (WaveSpeed) must be sent as given. Errors use the storage services' XML shape, not
the providers' JSON, because that is what a client really meets there.

``/files/{token}/{name}`` serves uploads and generated media alike, with ``HEAD`` and byte ranges
(browsers seek in MP4s with ``Range``).
"""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web

from .core import SimCore
from .uploads import SIGNATURE_PARAM

def storage_error(status: int, code: str, message: str) -> web.Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>")
    return web.Response(status=status, text=body, content_type="application/xml")


def serve_bytes(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """200 with the bytes, or 206 for a satisfiable ``Range`` request."""
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "public, max-age=3600"}
    if "Range" in request.headers:
        try:
            wanted = request.http_range
        except ValueError:
            wanted = slice(None)
        if wanted.start is not None or wanted.stop is not None:
            start, stop, _ = wanted.indices(len(data))
            if start >= stop:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            return web.Response(status=206, body=data[start:stop], content_type=content_type, headers=headers)
    return web.Response(body=data, content_type=content_type, headers=headers)


class FileRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core

    def register(self, app: web.Application) -> None:
        app.router.add_get("/files/{token}/{name:.+}", self.get_file, name="files.get")
        app.router.add_put("/upload/{token}", self.put_upload, name="upload.put")

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        upload = self.core.uploads.get(token)
        if upload is not None and upload.data is not None:
            return serve_bytes(request, upload.data, upload.content_type)
        spec = self.core.media.spec(token)
        if spec is not None:
            data = await self.core.media.get(token)
            self.core.stats.media_renders = self.core.media.renders
            if data is not None:
                return serve_bytes(request, data, spec.content_type)
        return storage_error(404, "NoSuchKey", "The specified key does not exist.")

    async def put_upload(self, request: web.Request) -> web.Response:
        upload = self.core.uploads.get(request.match_info["token"])
        if upload is None:
            return storage_error(404, "NoSuchUpload", "The upload URL is unknown or expired.")
        if not secrets.compare_digest(request.query.get(SIGNATURE_PARAM, ""), upload.signature):
            return storage_error(403, "SignatureDoesNotMatch",
                                 "The query string signature is missing or wrong: PUT the upload URL exactly as given.")
        if "Authorization" in request.headers:
            return storage_error(400, "InvalidArgument",
                                 "Only one auth mechanism allowed; the presigned URL already authorizes this "
                                 "request, do not send an Authorization header.")
        for name, value in upload.required_headers.items():
            if request.headers.get(name) != value:
                return storage_error(403, "SignatureDoesNotMatch",
                                     f"Signed header {name} must be {value!r}, got {request.headers.get(name)!r}.")
        if upload.required_headers.get("If-None-Match") == "*" and upload.data is not None:
            return storage_error(412, "PreconditionFailed", "An object already exists at this upload URL.")
        data = await request.read()
        if len(data) > self.core.settings.max_upload_bytes:
            return storage_error(413, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        if upload.declared_size is not None and len(data) != upload.declared_size:
            return storage_error(400, "IncompleteBody",
                                 f"Got {len(data)} bytes but the upload ticket declared {upload.declared_size}.")
        upload.data = data
        if not upload.required_headers.get("Content-Type"):
            upload.content_type = request.headers.get("Content-Type") or upload.content_type
        return web.Response(status=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})
