"""``videogen reconcile``: users' charges beside what fal and WaveSpeed billed, per model and day.

The comparison and the adjustments are the core's (``agent_tools/reconcile.py`` through the
Toolkit); this module parses the options and prints the report. Exits 1 when a difference was
found and not applied, so a cron job can alert on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from ..money import format_usd
from .output import EXIT_DIFFERENCES, table, with_toolkit


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD, e.g. 2026-11-01") from None


def _usd(micros: int | None) -> str:
    if micros is None:
        return "?"
    return ("-" if micros < 0 else "") + format_usd(abs(micros))


def cmd_reconcile(args: argparse.Namespace) -> int:
    report = with_toolkit(args, lambda t: t.reconcile(t.local_account(), since=args.since, apply=args.apply))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        if report.groups:
            print(table([[g.day, g.provider, g.model, str(g.jobs), _usd(g.charged_micros), _usd(g.billed_micros),
                          _usd(g.difference_micros)] for g in report.groups],
                        ["day", "provider", "model", "jobs", "charged", "billed", "difference"]))
        else:
            print(f"no settled jobs since {report.since.isoformat()}")
        for a in report.adjustments:
            print(f"adjusted job {a.job_id}: charged {_usd(a.old_micros)} → {_usd(a.new_micros)}")
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
    pending = report.differences and not report.applied
    if pending and not args.json:
        print(f"{len(report.differences)} group(s) differ; `videogen reconcile --apply` sets fal jobs' charges to "
              "fal's bill.", file=sys.stderr)
    return EXIT_DIFFERENCES if pending else 0


def register(commands: Any) -> None:
    p = commands.add_parser(
        "reconcile", help="compare users' charges with the providers' bills",
        description=("Ask fal's billing API (needs an admin key: FAL_ADMIN_KEY) what it billed for every settled fal "
                     "job, and WaveSpeed's usage report per day and model; print the charges beside the bills per "
                     "model and UTC day. --apply sets each fal job's charge to fal's figure through the ledger "
                     "(audited; the running totals follow). Exits 1 on an unapplied difference."))
    p.add_argument("--since", type=_day, metavar="DATE", help="first UTC day to compare (default: 7 days ago)")
    p.add_argument("--apply", action="store_true", help="adjust fal jobs' settled charges to fal's bill")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_reconcile)

