"""``videogen books check``: do the running totals agree with the holds, and the holds with the audit?

The recomputation is the ledger's (``Ledger.check_books``); this module only calls the Toolkit and
prints the result. It exits 1 when the books disagree, so a cron job or a test can act on it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .output import EXIT_DIFFERENCES, print_differences, with_toolkit


def cmd_books_check(args: argparse.Namespace) -> int:
    report = with_toolkit(args, lambda t: t.check_books(t.local_account()))
    if args.json:
        print(json.dumps({"ok": report.ok, "holds": report.holds, "totals": report.totals,
                          "differences": list(report.differences)}, indent=2))
    elif report.ok:
        print(f"books agree: {report.totals} running total(s) match {report.holds} hold(s) and their audit")
    else:
        return print_differences(f"{len(report.differences)} difference(s) in {report.holds} hold(s) and "
                                 f"{report.totals} running total(s):", report.differences)
    return 0 if report.ok else EXIT_DIFFERENCES


def register(commands: Any) -> None:
    books = commands.add_parser("books", help="check the ledger's books",
                                description="Check that the ledger's running totals and audit agree with its holds.")
    sub = books.add_subparsers(dest="books_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("check", help="recompute the running totals and compare",
                       description=("Recompute the spend totals per account, guild and the global scope from the holds, "
                                    "and each hold's charge from the audit; list every difference. Exits 1 on a "
                                    "difference."))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_books_check)
