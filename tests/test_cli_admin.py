"""Operator commands end to end on a real database file, through main() as a person types them."""

from __future__ import annotations

import json
import sqlite3

import pytest



@pytest.fixture
def db_env(clean_env, monkeypatch):
    monkeypatch.setenv("VIDEOGEN_DB", str(clean_env / "admin.db"))
    monkeypatch.setenv("VIDEOGEN_MEDIA_DIR", str(clean_env / "media"))
    return clean_env


def test_accounts_and_tokens(cli, db_env):
    assert cli("accounts", "add", "alice")[0] == 0
    code, _, err = cli("accounts", "add", "alice")
    assert code == 2 and "already exists" in err
    code, out, err = cli("accounts", "token", "alice", "--label", "laptop")
    token = out.strip()
    assert code == 0 and token.startswith("vg_") and "only time" in err
    raw = (db_env / "admin.db").read_bytes() + b"".join(p.read_bytes() for p in db_env.glob("admin.db-*"))
    assert token.encode() not in raw, "only the token's hash is stored"
    assert cli("accounts", "link", "alice", "--discord", "42")[0] == 0
    code, out, _ = cli("accounts", "list", "--json")
    alice = next(a for a in json.loads(out) if a["name"] == "alice")
    assert alice["ids"] == "discord:42" and alice["tokens"] == 1


def test_unknown_account_names_what_exists(cli, db_env):
    cli("accounts", "add", "alice")
    code, _, err = cli("quota", "set", "--account", "bob", "--daily", "5")
    assert code == 2 and "No account 'bob'" in err and "alice" in err
    code, _, err = cli("accounts", "token", "carol")
    assert code == 2 and "No account 'carol'" in err


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--daily", "-3", "from 0 to 1000000"),
    ("--daily", "lots", "dollar amount"),
    ("--monthly", "5000000", "from 0 to 1000000"),
    ("--concurrent", "2.5", "whole number"),
    ("--hourly", "-1", "from 0 to 1000000"),
    ("--warn-at", "80", "at most 1"),
])
def test_bad_limits_are_refused_with_the_reason(cli, db_env, option, value, message):
    code, _, err = cli("quota", "set", "--global", option, value)
    assert code == 2 and message in err


def test_quota_set_and_show(cli, db_env):
    assert cli("quota", "set", "--guild", "77", "--daily", "20", "--concurrent", "4")[0] == 0
    code, out, _ = cli("quota", "show", "--guild", "77", "--json")
    data = json.loads(out)
    assert data["daily_usd"] == 20.0 and data["concurrent_jobs"] == 4 and data["monthly_usd"] is None
    cli("quota", "set", "--guild", "77", "--monthly", "100")  # merges, keeps the daily cap
    assert json.loads(cli("quota", "show", "--guild", "77", "--json")[1])["daily_usd"] == 20.0
    code, out, _ = cli("quota", "show")
    assert code == 0 and "daily" in out and "resets at 00:00 UTC" in out
    code, _, err = cli("quota", "set", "--guild", "1", "--role", "2", "--daily", "1")
    assert code == 2 and "Choose one" in err


def test_spend_and_holds_after_a_refusal_and_a_run(cli, db_env, providers_env):
    cli("quota", "set", "--daily", "1.10")
    code, _, err = cli("generate", "sora_2_pro_text_to_video", "--prompt", "x", "--duration", "8")
    assert code == 2
    assert "This Sora 2 Pro clip costs $4.00, more than the whole daily limit of $1.10" in err
    code, out, _ = cli("generate", "hailuo_02_text_to_video", "--prompt", "x", "--json")
    assert code == 0 and json.loads(out)["cost_usd"] == 0.27
    code, out, _ = cli("spend", "--by", "model", "--json")
    assert json.loads(out) == [{"model": "hailuo_02_text_to_video", "jobs": 1, "settled_usd": 0.27, "open_usd": 0.0}]
    code, out, _ = cli("holds")
    assert code == 0 and "no open holds" in out
    code, _, err = cli("spend", "--since", "yesterday")
    assert code == 2 and "YYYY-MM-DD" in err


def test_holds_lists_an_unknown_outcome_and_resolves_it(cli, db_env):
    cli("quota", "show")  # creates the database
    path = db_env / "admin.db"
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO accounts(name, created_at) VALUES ('bob', 0)")
        conn.execute("INSERT INTO holds(id, idempotency_key, account, tool, estimate_micros, state, job_id, created_at,"
                     " updated_at) VALUES ('h1', 'k1', 'bob', 'veo3_fast', 3200000, 'held', 'j1', 0, 0)")
        conn.execute("INSERT INTO jobs(id, account, tool, provider, endpoint_id, params, state, estimate_micros,"
                     " hold_id, created_at, updated_at) VALUES ('j1', 'bob', 'veo3_fast', 'fal', 'fal-ai/veo3/fast',"
                     " '{}', 'unknown', 3200000, 'h1', 0, 0)")
    code, out, _ = cli("holds")
    assert "h1" in out and "outcome unknown" in out and "videogen holds settle h1" in out
    assert cli("holds", "settle", "h1", "--usd", "1.50")[0] == 0
    code, out, _ = cli("holds", "release", "h1")
    assert "already settled or released" in out
    code, out, _ = cli("spend", "--json")
    assert json.loads(out)[0] == {"account": "bob", "jobs": 1, "settled_usd": 1.5, "open_usd": 0.0}


def test_simulate_leaves_the_real_books_untouched(cli, db_env, providers_env):
    books = ("spend", "--json"), ("quota", "show", "--json"), ("holds",), ("jobs", "list", "--all", "--json")
    cli("generate", "hailuo_02_text_to_video", "--prompt", "a real one", "--json")
    before = [cli(*command) for command in books]
    assert [code for code, _, _ in before] == [0, 0, 0, 0]
    code, out, err = cli("generate", "hailuo_02_text_to_video", "--prompt", "x", "--simulate", "--json")
    assert code == 0 and json.loads(out)["simulated"] is True and "kept apart" in err
    code, _, _ = cli("generate", "sora_2_pro_text_to_video", "--prompt", "[sim:content_policy] x", "--simulate")
    assert code == 1
    assert [cli(*command) for command in books] == before
    cli("quota", "set", "--daily", "1.10")  # the real database's limits apply to simulated runs too
    before = [cli(*command) for command in books]
    code, _, err = cli("generate", "sora_2_pro_text_to_video", "--prompt", "x", "--duration", "8", "--simulate")
    assert code == 2 and "more than the whole daily limit of $1.10" in err
    assert [cli(*command) for command in books] == before
    assert json.loads(before[0][1])[0]["settled_usd"] == 0.27  # the real run alone
    sandbox = providers_env / "simulated" / "admin.db"
    with sqlite3.connect(sandbox) as conn:
        states = sorted(r[0] for r in conn.execute("SELECT state FROM jobs"))
        assert states == ["failed", "succeeded"]
        assert conn.execute("SELECT COUNT(*) FROM holds WHERE state IN ('held', 'submitted')").fetchone() == (0,)
    assert [p.parent.parent.name for p in (providers_env / "simulated" / "media").glob("*/*")] == ["media"]
