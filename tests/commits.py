"""Holding a SQLite write at its COMMIT, so a test can land a cancel exactly while a write commits
(the database and MCP cancellation tests share it)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def hold_the_commit(after_sql: str) -> tuple[Callable[[str], None], threading.Event, threading.Event]:
    """A SQLite trace callback that holds the database thread at the COMMIT following a statement
    containing ``after_sql`` until ``go`` is set, having set ``committing``: so a test can land a
    cancel exactly while a write commits."""
    committing, go = threading.Event(), threading.Event()
    seen = False

    def trace(sql: str) -> None:
        nonlocal seen
        seen = seen or after_sql in sql
        if seen and sql.strip() == "COMMIT" and not committing.is_set():
            committing.set()
            go.wait()

    return trace, committing, go
