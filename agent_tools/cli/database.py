"""``videogen db copy --to postgresql://…``: move the SQLite database to a PostgreSQL server.

The copy and its checks are ``agent_tools.dbcopy``'s; this module parses the options and prints
what was compared. It exits 1 if anything differs, so a migration script can stop there.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..money import format_usd
from .output import print_differences, settings_of, table


def cmd_db_copy(args: argparse.Namespace) -> int:
    import asyncio

    from ..dbcopy import copy_database

    settings = settings_of(args)
    source = args.source or settings.storage.database
    report = asyncio.run(copy_database(source, args.to, settings, force=args.force))
    if args.json:
        print(json.dumps({"ok": report.ok, "source": report.source, "target": report.target,
                          "tables": [vars(t) for t in report.tables], "books_source": report.books_source,
                          "books_target": report.books_target, "differences": list(report.differences)}, indent=2))
    else:
        print(f"copied {report.source} → {report.target}")
        print(table([[t.name, str(t.source_rows), str(t.target_rows), "yes" if t.same else "NO"] for t in report.tables],
                    ["table", "SQLite rows", "PostgreSQL rows", "same rows"]))
        for key in ("settled_micros", "open_micros", "audit_settled_micros"):
            print(f"{key.removesuffix('_micros').replace('_', ' ')}: {format_usd(report.books_source.get(key, 0))} "
                  f"→ {format_usd(report.books_target.get(key, 0))}")
    if not report.ok:
        return print_differences("the copy differs from the source (above); keep using the SQLite file until it is "
                                 "understood", report.differences)
    if not args.json:
        print(f"verified: every row and the books match. Point the setting at it: VIDEOGEN_DB={report.target} "
              "(or [storage] database); the SQLite file was not changed.")
    return 0


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="move the database",
                             description="Move the database between engines.")
    sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("copy", help="copy the SQLite database to PostgreSQL and verify it",
                       description=("Copy every table of the SQLite database into an empty PostgreSQL database in one "
                                    "transaction, then compare every row and the ledger's books on both sides. The "
                                    "SQLite file is only read. Refuses while a job is unfinished or a hold open."))
    p.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host:port/database")
    p.add_argument("--from", dest="source", metavar="PATH", help="the SQLite file (default: the configured database)")
    p.add_argument("--force", action="store_true", help="copy even with unfinished jobs or open holds")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_db_copy)
