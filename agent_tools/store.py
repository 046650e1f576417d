"""Open the database a setting names: a file path → SQLite (``db.py``, the embedded default), a
``postgresql://`` URL → PostgreSQL (``postgres.py``, the store several processes and machines share).

Both answer the same calls (``transaction``, ``fetchone``, ``fetchall``, ``scalar``, ``close``), so
the Toolkit, the ledger and the job engine never ask which one they got. The PostgreSQL module is
imported only when named, so a SQLite user needs no driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .config import StorageSettings, is_database_url
from .db import Database

if TYPE_CHECKING:
    from .postgres import PostgresDatabase


async def open_database(target: Path | str, storage: StorageSettings | None = None) -> "Database | PostgresDatabase":
    """The store ``target`` names; ``storage`` carries the PostgreSQL-only settings (a SQLite file
    has none)."""
    if is_database_url(target):
        from .postgres import PostgresDatabase

        storage = storage or StorageSettings(database=str(target))
        return await PostgresDatabase.open(str(target), prepared_statements=storage.postgres_prepared_statements,
                                           synchronous_commit=storage.postgres_synchronous_commit)
    return await Database.open(target)
