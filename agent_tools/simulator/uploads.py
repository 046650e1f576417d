"""The simulator's upload records: what a presigned upload URL was issued for, and its bytes.

Kept apart from ``files`` (the HTTP routes that serve them) so that ``core`` can hold the store
without importing the routes, which themselves need ``core``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

SIGNATURE_PARAM = "X-Sim-Signature"


@dataclass
class Upload:
    token: str
    file_name: str
    content_type: str
    signature: str
    required_headers: dict[str, str] = field(default_factory=dict)
    declared_size: int | None = None
    data: bytes | None = None


class UploadStore:
    def __init__(self) -> None:
        self._uploads: dict[str, Upload] = {}

    def create(self, *, file_name: str, content_type: str, required_headers: dict[str, str] | None = None,
               declared_size: int | None = None, data: bytes | None = None) -> Upload:
        token = secrets.token_urlsafe(16)
        upload = Upload(token, safe_name(file_name), content_type, secrets.token_hex(16),
                        dict(required_headers or {}), declared_size, data)
        self._uploads[token] = upload
        return upload

    def get(self, token: str) -> Upload | None:
        return self._uploads.get(token)


def safe_name(name: str) -> str:
    """A file name usable as the last URL segment."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name.rsplit("/", 1)[-1])[:120]
    return cleaned.strip(".") or "file"
