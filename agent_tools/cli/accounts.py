"""Operator commands: ``videogen accounts``, ``quota``, ``spend`` and ``holds``.

All of them act as the local account (an admin) through the Toolkit, the same calls the Discord
``/admin`` command makes, and print tables (or ``--json``) on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..money import format_usd, to_usd
from .output import table, with_toolkit

if TYPE_CHECKING:  # the ledger and the Toolkit load inside the commands that use them
    from ..ledger import LimitStatus
    from ..toolkit import Toolkit


# -- accounts ---------------------------------------------------------------------------------

def cmd_accounts_add(args: argparse.Namespace) -> int:
    with_toolkit(args, lambda t: t.add_account(t.local_account(), args.name))
    print(f"account '{args.name}' added; give it an HTTP token with `videogen accounts token {args.name}`")
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    rows = with_toolkit(args, lambda t: t.ledger.accounts())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(table([[r["name"], r["ids"] or "", str(r["tokens"]),
                   time.strftime("%Y-%m-%d", time.localtime(r["created_at"]))] for r in rows],
                 ["ACCOUNT", "LINKED IDENTITIES", "TOKENS", "CREATED"]))
    return 0


def cmd_accounts_link(args: argparse.Namespace) -> int:
    with_toolkit(args, lambda t: t.link_discord(t.local_account(), args.account, args.discord))
    print(f"Discord user {args.discord} now acts as account '{args.account}' (one budget for both)")
    return 0


def cmd_accounts_token(args: argparse.Namespace) -> int:
    token = with_toolkit(args, lambda t: t.create_token(t.local_account(), args.account, label=args.label))
    print(token)
    print(f"\nThis is the only time the token for '{args.account}' is shown; only its hash is stored. "
          "Use it as `Authorization: Bearer <token>` with `videogen mcp --http`.", file=sys.stderr)
    return 0


# -- quota ------------------------------------------------------------------------------------

def _scope(args: argparse.Namespace) -> tuple[str, str]:
    from ..toolkit import LOCAL_ACCOUNT

    chosen = [(name, value) for name, value in (("account", args.account), ("guild", args.guild), ("role", args.role))
              if value is not None]
    if args.global_:
        chosen.append(("global", ""))
    if len(chosen) > 1:
        raise UserError("Choose one of --account, --guild, --role or --global.")
    return chosen[0] if chosen else ("account", LOCAL_ACCOUNT)


def _status_rows(statuses: list[LimitStatus], now: float, tz: Any) -> list[list[str]]:
    from ..ledger import resets_phrase

    rows = []
    for s in statuses:
        money = s.kind in ("daily", "monthly")
        show = format_usd if money else str
        rows.append([f"{s.scope} {s.scope_id}".strip(), s.kind, show(s.limit), show(s.used), show(s.remaining),
                     resets_phrase(s.resets_at, now, tz) if s.resets_at else
                     ("rolling hour" if s.kind == "hourly" else "as jobs finish")])
    return rows


def cmd_quota_show(args: argparse.Namespace) -> int:
    from ..ledger import Limits
    from ..toolkit import LOCAL_ACCOUNT, Account

    scope, scope_id = _scope(args)

    async def action(t: Toolkit) -> Any:
        if scope == "account":
            if scope_id != LOCAL_ACCOUNT:
                await t.ledger.require_account(scope_id)
            return await t.quota_status(Account(scope_id)), t.ledger.tz
        return await t.stored_limits(t.local_account(), scope, scope_id), t.ledger.tz

    result, tz = with_toolkit(args, action)
    if isinstance(result, Limits):
        data = {"scope": scope, "scope_id": scope_id, "daily_usd": _usd(result.daily_micros),
                "monthly_usd": _usd(result.monthly_micros), "concurrent_jobs": result.concurrent_jobs,
                "jobs_per_hour": result.jobs_per_hour, "warn_at": result.warn_at}
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            print(f"{scope} {scope_id}".strip() + " overrides: " + (", ".join(
                f"{k}={v}" for k, v in data.items() if k not in ("scope", "scope_id") and v is not None) or "none"))
        return 0
    now = time.time()
    if args.json:
        print(json.dumps([{"scope": s.scope, "scope_id": s.scope_id, "kind": s.kind, "limit": s.limit,
                           "used": s.used, "remaining": s.remaining, "resets_at": s.resets_at,
                           "unit": "micros" if s.kind in ("daily", "monthly") else "jobs"} for s in result], indent=2))
        return 0
    if not result:
        print(f"account {scope_id}: no limits apply")
        return 0
    print(table(_status_rows(result, now, tz), ["SCOPE", "LIMIT", "MAX", "USED", "LEFT", "RESETS"]))
    return 0


def _usd(micros: int | None) -> float | None:
    return None if micros is None else to_usd(micros)


def cmd_quota_set(args: argparse.Namespace) -> int:
    from ..ledger import Limits, parse_share, parse_usd

    scope, scope_id = _scope(args)
    if all(v is None for v in (args.daily, args.monthly, args.concurrent, args.hourly, args.warn_at)):
        raise UserError("Give at least one of --daily, --monthly, --concurrent, --hourly or --warn-at.")
    limits = Limits(daily_micros=None if args.daily is None else parse_usd(args.daily, "--daily"),
                    monthly_micros=None if args.monthly is None else parse_usd(args.monthly, "--monthly"),
                    concurrent_jobs=_count(args.concurrent, "--concurrent"),
                    jobs_per_hour=_count(args.hourly, "--hourly"),
                    warn_at=None if args.warn_at is None else parse_share(args.warn_at, "--warn-at"))
    merged = with_toolkit(args, lambda t: t.set_limits(t.local_account(), scope, scope_id, limits))
    shown = {"daily": _money(merged.daily_micros), "monthly": _money(merged.monthly_micros),
             "concurrent": merged.concurrent_jobs, "hourly": merged.jobs_per_hour, "warn_at": merged.warn_at}
    print(f"{scope} {scope_id}".strip() + ": " + ", ".join(f"{k}={v}" for k, v in shown.items() if v is not None))
    return 0


def _money(micros: int | None) -> str | None:
    return None if micros is None else format_usd(micros)


def _count(text: str | None, option: str) -> int | None:
    from ..ledger import parse_count

    return None if text is None else parse_count(text, option)


# -- spend and holds ----------------------------------------------------------------------------

def cmd_spend(args: argparse.Namespace) -> int:
    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        raise UserError(f"--since takes a date as YYYY-MM-DD, not '{args.since}'.") from None
    rows = with_toolkit(args, lambda t: t.spend_report(t.local_account(), by=args.by, since=since, all_accounts=True))
    if args.json:
        print(json.dumps([{args.by: r.key, "jobs": r.jobs, "settled_usd": to_usd(r.settled_micros),
                           "open_usd": to_usd(r.open_micros)} for r in rows], indent=2))
        return 0
    total = sum(r.settled_micros for r in rows)
    print(table([[r.key, str(r.jobs), format_usd(r.settled_micros), format_usd(r.open_micros)] for r in rows]
                 + [["total", str(sum(r.jobs for r in rows)), format_usd(total),
                     format_usd(sum(r.open_micros for r in rows))]],
                 [args.by.upper(), "JOBS", "SPENT", "RESERVED (OPEN)"]))
    return 0


def cmd_holds(args: argparse.Namespace) -> int:
    holds = with_toolkit(args, lambda t: t.open_holds(t.local_account()))
    if args.json:
        print(json.dumps([h.__dict__ for h in holds], indent=2))
        return 0
    if not holds:
        print("no open holds: every reservation is settled or released")
        return 0
    rows = []
    for h in holds:
        if h.job_state == "unknown":
            advice = (f"outcome unknown: check {h.tool}'s provider, then `videogen holds settle {h.id}` "
                      f"or `videogen holds release {h.id}`")
        elif h.job_state in (None, "pending"):
            advice = f"never submitted: `videogen holds release {h.id}`"
        else:
            advice = f"job {h.job_id} is {h.job_state}; it settles by itself"
        rows.append([h.id, h.account, h.tool, format_usd(h.estimate_micros), h.state,
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(h.created_at)), advice])
    print(table(rows, ["HOLD", "ACCOUNT", "TOOL", "RESERVED", "STATE", "CREATED", "WHAT TO DO"]))
    return 0


def cmd_holds_resolve(args: argparse.Namespace) -> int:
    from ..ledger import parse_usd

    charge = None
    if args.action == "settle":
        charge = parse_usd(args.usd, "--usd") if args.usd is not None else -1

    async def action(t: Toolkit) -> bool:
        amount = charge
        if amount == -1:
            hold = next((h for h in await t.open_holds(t.local_account()) if h.id == args.hold_id), None)
            if hold is None:
                raise UserError(f"No open hold '{args.hold_id}'; `videogen holds` lists them.")
            amount = hold.estimate_micros
        return await t.resolve_hold(t.local_account(), args.hold_id, charge_micros=amount)

    changed = with_toolkit(args, action)
    print(f"hold {args.hold_id} {'resolved' if changed else 'was already settled or released; nothing changed'}")
    return 0


# -- wiring ------------------------------------------------------------------------------------

def register(commands: Any) -> None:
    accounts = commands.add_parser("accounts", help="manage accounts, identities and HTTP tokens",
                                   description="Accounts hold budgets; Discord users and HTTP tokens act as one.")
    sub = accounts.add_subparsers(dest="accounts_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("add", help="create an account", description="Create an account.")
    p.add_argument("name")
    p.set_defaults(func=cmd_accounts_add)
    p = sub.add_parser("list", help="list accounts", description="List accounts, linked identities and tokens.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_accounts_list)
    p = sub.add_parser("link", help="link a Discord user to an account",
                       description="Make a Discord user act as an account, so Discord and MCP share one budget.")
    p.add_argument("account")
    p.add_argument("--discord", required=True, metavar="USER_ID", help="the Discord user id")
    p.set_defaults(func=cmd_accounts_link)
    p = sub.add_parser("token", help="create an HTTP bearer token (shown once)",
                       description="Create a bearer token for `videogen mcp --http`; it is shown once, stored hashed.")
    p.add_argument("account")
    p.add_argument("--label", default="", help="a note to recognise the token by")
    p.set_defaults(func=cmd_accounts_token)

    quota = commands.add_parser("quota", help="show or set limits", description="Show or set spend and rate limits.")
    sub = quota.add_subparsers(dest="quota_command", metavar="SUBCOMMAND", required=True)
    for name, helptext in (("show", "show limits and usage"), ("set", "set limits for one scope")):
        p = sub.add_parser(name, help=helptext, description=helptext.capitalize() + " (default scope: the local account).")
        p.add_argument("--account", metavar="A")
        p.add_argument("--guild", metavar="G", help="a Discord guild id")
        p.add_argument("--role", metavar="R", help="a Discord role id")
        p.add_argument("--global", dest="global_", action="store_true", help="the operator's total")
        if name == "show":
            p.add_argument("--json", action="store_true", help="print JSON")
            p.set_defaults(func=cmd_quota_show)
        else:
            p.add_argument("--daily", metavar="USD", help="spend per calendar day")
            p.add_argument("--monthly", metavar="USD", help="spend per calendar month")
            p.add_argument("--concurrent", metavar="N", help="jobs running at once")
            p.add_argument("--hourly", metavar="N", help="jobs started per hour")
            p.add_argument("--warn-at", metavar="SHARE", help="warn when this share of a budget is used (0.8)")
            p.set_defaults(func=cmd_quota_set)

    spend = commands.add_parser("spend", help="report spend", description="Spend per account, model or day.")
    spend.add_argument("--by", choices=("account", "model", "day"), default="account")
    spend.add_argument("--since", metavar="DATE", help="YYYY-MM-DD (default: everything)")
    spend.add_argument("--json", action="store_true", help="print JSON")
    spend.set_defaults(func=cmd_spend)

    holds = commands.add_parser("holds", help="open reservations and how to resolve them",
                                description="List holds that are neither settled nor released.")
    holds.add_argument("--json", action="store_true", help="print JSON")
    holds.set_defaults(func=cmd_holds)
    sub = holds.add_subparsers(dest="holds_command", metavar="SUBCOMMAND")
    for action, helptext in (("settle", "charge a hold (its estimate, or --usd)"), ("release", "charge a hold nothing")):
        p = sub.add_parser(action, help=helptext, description=helptext.capitalize() + ".")
        p.add_argument("hold_id", metavar="HOLD")
        if action == "settle":
            p.add_argument("--usd", help="the amount actually billed (default: the estimate)")
        p.set_defaults(func=cmd_holds_resolve, action=action)
