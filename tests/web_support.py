"""What the dashboard's route tests and browser tests share: settings on a temp database, a clock
the tests move, seeding accounts and tokens, and reading a form's CSRF token out of a page."""

from __future__ import annotations

import re
import time
from pathlib import Path

from agent_tools.config import Settings

ADMIN = "boss"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web_settings(tmp_path: Path, *, quotas: dict | None = None) -> Settings:
    """A temp database and media folder, fast polling, ``boss`` as an admin account."""
    return Settings.model_validate({
        "storage": {"database": str(tmp_path / "videogen.db"), "media_dir": str(tmp_path / "media")},
        "polling": {"initial_seconds": 0.05, "max_seconds": 0.2, "factor": 1.5},
        "admins": {"accounts": [ADMIN]},
        "quotas": {"default": quotas or {"daily_usd": 50, "monthly_usd": 500, "concurrent_jobs": 5,
                                         "jobs_per_hour": 100}},
    })


class Clock:
    """Wall time plus an offset a test can push forward (to expire a session)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)
