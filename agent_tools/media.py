"""Media in and out: local inputs become URLs a provider can read; outputs are kept on disk.

Inputs: a model's image fields accept a URL or (where the surface allows it) a local file, which
is checked — exists, is an image, not too large — *before* anything is reserved or submitted, then
uploaded through the provider's own upload flow.

Outputs: provider URLs expire (fal: hours, WaveSpeed: 7 days), so every output is downloaded into
the media directory. The download is guarded: a size cap, a content-type check, and no private,
loopback or link-local address unless it is a configured provider host (a crafted result URL must
not make the server fetch from its own network).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from .catalog import ModelInput, ModelSpec
from .errors import UserError
from .providers.base import OutputFile, ProviderAdapter

if TYPE_CHECKING:  # httpx loads with the first download, not with every start
    import httpx

MAX_INPUT_BYTES = 20 * 1024 * 1024
"""Largest local image uploaded (WaveSpeed's documented image limit; fal accepts more)."""

IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)

OUTPUT_TYPES = {"video": ("video/",), "images": ("image/",)}
KIND_NOUN = {"video": "a video", "images": "an image"}


def format_size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} bytes"


class MediaError(UserError):
    """An input file or an output download that cannot be used; says which and why."""


class MediaMismatch(MediaError):
    """A download whose bytes are not the media asked for (an HTML page served as video/mp4): the
    provider did not deliver, so the job fails at no charge."""


def sniff_image(head: bytes) -> str | None:
    """The image type from the first bytes, or None: extensions lie, magic numbers rarely do."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((ctype for magic, ctype in IMAGE_SIGNATURES if head.startswith(magic)), None)


def sniff_video(head: bytes) -> str | None:
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def is_remote(value: str) -> bool:
    return value.startswith(("http://", "https://", "data:"))


def check_local_image(value: str, max_bytes: int = MAX_INPUT_BYTES) -> tuple[Path, str]:
    """A local path that is a readable image under the size cap, with its content type."""
    path = Path(value.removeprefix("file://")).expanduser()
    if not path.exists():
        raise MediaError(f"The image file {path} does not exist. Pass an existing file path or an https:// URL.")
    if not path.is_file():
        raise MediaError(f"{path} is not a file. Pass an image file or an https:// URL.")
    size = path.stat().st_size
    if size > max_bytes:
        raise MediaError(f"The image file {path} is {format_size(size)}; the limit is "
                         f"{format_size(max_bytes)}. Downscale it or pass a URL.")
    with path.open("rb") as fh:
        ctype = sniff_image(fh.read(16))
    if ctype is None:
        raise MediaError(f"{path} is not an image (PNG, JPEG, WebP, GIF or BMP). Pass an image file or URL.")
    return path, ctype


def check_data_uri(value: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """A ``data:`` URI image checked like a local file: base64, under the size cap, and really an
    image (by its bytes, not its declared type). Returns the sniffed content type."""
    header, comma, payload = value.partition(",")
    if not comma or not header.endswith(";base64"):
        raise MediaError("A data: URI image must be base64 (data:image/png;base64,…). Pass it so, or an https:// URL.")
    estimated = len(payload) * 3 // 4
    if estimated > max_bytes:
        raise MediaError(f"The data: URI image is about {format_size(estimated)}; the limit is {format_size(max_bytes)}. "
                         "Downscale it or pass a URL.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("The data: URI is not valid base64. Encode the image again, or pass an https:// URL.") from None
    ctype = sniff_image(data[:16])
    if ctype is None:
        raise MediaError("The data: URI is not an image (PNG, JPEG, WebP, GIF or BMP). Pass an image or an https:// URL.")
    return ctype


def data_uris(spec: ModelSpec, params: ModelInput) -> list[tuple[str, str]]:
    """(field, value) of every ``data:`` URI in the model's media fields."""
    found = []
    for name in spec.media_fields():
        value = getattr(params, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.startswith("data:"):
                found.append((name, item))
    return found


def local_inputs(spec: ModelSpec, params: ModelInput) -> dict[str, list[str]]:
    """Field → the local paths it holds (lists flattened), so surfaces can check or refuse them."""
    found: dict[str, list[str]] = {}
    for name in spec.media_fields():
        value = getattr(params, name)
        values = value if isinstance(value, list) else [value]
        local = [v for v in values if isinstance(v, str) and not is_remote(v)]
        if local:
            found[name] = local
    return found


def check_inputs(spec: ModelSpec, params: ModelInput, *, allow_local: bool) -> None:
    """Fail fast, before any reservation, on inputs that can never be sent."""
    for name, value in data_uris(spec, params):
        try:
            check_data_uri(value)
        except MediaError as exc:
            raise MediaError(f"{name}: {exc.message}") from None
    for name, paths in local_inputs(spec, params).items():
        if not allow_local:
            raise MediaError(f"{name}: local file paths are not accepted here ({paths[0]!r}); the server's files "
                             "are not yours. Pass an https:// URL of the image.")
        for value in paths:
            check_local_image(value)


async def prepare_inputs(spec: ModelSpec, params: ModelInput, adapter: ProviderAdapter) -> ModelInput:
    """Upload local image files through the provider and return params that carry only URLs."""
    updates: dict[str, Any] = {}
    for name, paths in local_inputs(spec, params).items():
        uploaded = {}
        for value in paths:
            path, ctype = check_local_image(value)
            uploaded[value] = await adapter.upload(path, ctype)
        current = getattr(params, name)
        updates[name] = [uploaded.get(v, v) for v in current] if isinstance(current, list) else uploaded[current]
    return params.model_copy(update=updates) if updates else params


# -- outputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeptFile:
    url: str
    path: str
    content_type: str
    size: int


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class MediaStore:
    """Downloads provider outputs into ``media_dir/<job id>/`` with the guards described above."""

    def __init__(self, media_dir: Path, *, max_bytes: int, trusted_urls: Iterable[str] = (),
                 client: httpx.AsyncClient | None = None, timeout: float = 120.0,
                 deadline_seconds: float = 900.0) -> None:
        self.media_dir = Path(media_dir)
        self.max_bytes = max_bytes
        self.deadline_seconds = deadline_seconds
        """The most one download may take in all (``timeout`` only bounds each read)."""
        self.trusted = {_host_port(u) for u in trusted_urls}
        self._http = client
        self._timeout = timeout
        self._owns_client = client is None

    @property
    def _client(self) -> httpx.AsyncClient:
        """Made on first download, on the providers' shared TLS context."""
        if self._http is None:
            from .providers.http import new_client

            self._http = new_client(timeout=self._timeout, follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        if self._owns_client and self._http is not None:
            await self._http.aclose()

    async def _check_address(self, url: str) -> str | None:
        """The address to connect to for ``url``: resolved once and checked to be public, so the
        download goes to exactly that address (a second lookup could answer differently — DNS
        rebinding). None for a configured provider host, which is trusted and resolved as usual."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MediaError(f"The provider returned an output URL videogen will not fetch: {parts.scheme}:// URLs "
                             "are not allowed.")
        if _host_port(url) in self.trusted:
            return None
        try:
            infos = await self._resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except socket.gaierror as exc:
            raise MediaError(f"The output host {parts.hostname} cannot be resolved ({exc.strerror}).") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for address in addresses:
            if (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
                    or address.is_reserved or address.is_unspecified):
                raise MediaError(f"The output URL points at a private or local address ({address}); videogen only "
                                 "downloads from public hosts or the configured provider hosts.")
        if not addresses:
            raise MediaError(f"The output host {parts.hostname} has no address.")
        return str(addresses[0])

    async def _resolve(self, host: str, port: int) -> list[Any]:
        return await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)

    def inside(self, path: str | None) -> Path | None:
        """``path`` resolved (symlinks followed) if it is an existing file inside the media
        directory, else None: what may be served back to a user, never anything outside it."""
        if not path:
            return None
        try:
            resolved = Path(path).resolve(strict=True)
            root = self.media_dir.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return resolved if resolved.is_relative_to(root) and resolved.is_file() else None

    async def keep(self, job_id: str, index: int, output: OutputFile, kind: str) -> KeptFile:
        """Download one output to disk, atomically (temp file + rename), so a retry after a crash
        overwrites a partial file instead of keeping two copies."""
        if output.url.startswith("data:"):
            raise MediaError("The provider returned an inline data URI instead of a file URL; turn sync_mode off.")
        folder = self.media_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await self._download(folder, index, output, kind)
        except TimeoutError:
            raise MediaError(f"Downloading output {index + 1} did not finish within {self.deadline_seconds:g} s "
                             "(storage.download_deadline_seconds); the provider URL still works until it "
                             "expires.") from None

    async def _download(self, folder: Path, index: int, output: OutputFile, kind: str) -> KeptFile:
        url = output.url
        for _ in range(5):  # follow redirects by hand so every hop passes the address check
            address = await self._check_address(url)
            target, headers, extensions = (url, {}, {}) if address is None else _pinned(url, address)
            async with self._client.stream("GET", target, headers=headers, extensions=extensions) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise MediaError(f"Downloading the output failed: HTTP {response.status_code} from "
                                     f"{urlsplit(url).hostname}.")
                return await self._write(response, folder, index, output, kind, url)
        raise MediaError("Downloading the output failed: too many redirects.")

    async def _write(self, response: httpx.Response, folder: Path, index: int, output: OutputFile, kind: str,
                     url: str) -> KeptFile:
        declared = int(response.headers.get("content-length") or 0)
        if declared > self.max_bytes:
            raise MediaError(f"The output is {format_size(declared)}, over the {format_size(self.max_bytes)} "
                             "download limit (storage.max_download_mb).")
        name = _safe_name(output.file_name or Path(urlsplit(url).path).name or f"output-{index}")
        final = folder / f"{index}-{name}"
        # Each download writes its own temp file (never shared with another process or attempt)
        # and removes it on any error or cancellation; only a complete, checked file is renamed.
        temp = folder / f".{final.name}.{uuid.uuid4().hex[:12]}.part"
        try:
            size, head = 0, b""
            with temp.open("wb") as fh:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise MediaError(f"The output is over the {format_size(self.max_bytes)} download limit "
                                         "(storage.max_download_mb).")
                    if len(head) < 16:
                        head += chunk[:16]
                    fh.write(chunk)
            ctype = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
            sniffed = sniff_video(head) if kind == "video" else sniff_image(head)
            if ctype and ctype != "application/octet-stream" and not ctype.startswith(OUTPUT_TYPES[kind]):
                raise MediaMismatch(f"The output is {ctype}, not {KIND_NOUN[kind]} file; it was not kept.")
            if sniffed is None:
                raise MediaMismatch(f"The output served as {ctype or 'an undeclared type'} is not {KIND_NOUN[kind]} "
                                    f"file (its first bytes are {head[:8]!r}); it was not kept.")
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        # Temp files of an earlier owner of this job that was killed mid-download (kill -9 runs no
        # clean-up): this process holds the job's lease now, so they are nobody's.
        for stale in folder.glob(f".{final.name}.*.part"):
            stale.unlink(missing_ok=True)
        return KeptFile(url=output.url, path=str(final), content_type=ctype if ctype.startswith(OUTPUT_TYPES[kind])
                        else sniffed, size=size)


def _pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` aimed at ``address``: the same request (Host header, and for TLS the server name
    that the certificate is checked against), sent to the address that passed the check."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host + (f":{parts.port}" if parts.port else "")
    original = parts.hostname or ""
    host_header = (f"[{original}]" if ":" in original else original) + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": original} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"Host": host_header}, extensions


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100].lstrip(".")
    return cleaned or "output"
