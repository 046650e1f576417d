"""The chat agent in the terminal, against a scripted fake OpenAI-compatible server on loopback.

The fake (``fake_llm.py``) streams SSE chunks with ``tool_calls`` deltas, or answers in one JSON
body; the providers are the simulator on loopback; the books are a real SQLite file. Covered: plan
→ list → estimate → confirm → generate → deliver; declining; a run over the quota and a reply
over the budget; an LLM error and a cut stream mid-turn; a restart mid-conversation; the token
charges in the books and in ``spend``; the per-turn bounds; and what to install or set.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest

from agent_tools.chat.llm import ToolCallParts
from agent_tools.chat.store import INTERRUPTED, ConversationStore
from agent_tools.cli import main
from agent_tools.cli.chat import run_chat
from agent_tools.config import LlmSettings, Settings
from agent_tools.db import Database
from agent_tools.ledger import Ledger, Requester

from fake_llm import FakeLLM, tool_result
from test_mcp_server import make_settings, sim  # noqa: F401  (sim is a fixture)

FOX = "a 6-second clip of a fox in the snow, something cheap"
HAILUO = {"prompt": "A red fox trots through fresh snow, soft morning light", "duration": "6"}


@pytest.fixture
def llm():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


def settings_for(tmp_path: Path, sim, llm: FakeLLM, *, quotas: dict | None = None, **chat: object) -> Settings:
    """The MCP tests' settings (simulator, database, fast polling) plus the fake as the chat model."""
    llm_settings = LlmSettings.model_validate({
        "base_url": llm.base_url, "model": "fake-model", "api_key": "sk-test-secret-123",
        "usd_per_mtok_input": 2, "usd_per_mtok_output": 8, "max_retries": 0, **chat})
    return make_settings(tmp_path, sim, quotas).model_copy(update={"llm": llm_settings})


def fox_script() -> list:
    """The model's side of the happy path: look, price, run, report."""
    return [
        {"text": "Let me find a cheap text-to-video model.",
         "tool_calls": [("recommend_models", {"category": "text-to-video", "duration_seconds": 6,
                                              "max_cost_usd": 0.5})]},
        {"tool_calls": [("estimate_cost", {"model": "hailuo_02_text_to_video", "arguments": HAILUO})]},
        {"text": "Hailuo 02 costs $0.27 for 6 s.", "tool_calls": [
            ("generate", {"model": "hailuo_02_text_to_video", "arguments": HAILUO})]},
        lambda body: {"text": "Done! " + tool_result(body, "generate").splitlines()[0]},
    ]


async def chat(settings: Settings, message: str | None, *, answers: str = "", session: str | None = None,
               yes: bool = False, as_json: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_chat(settings, message, session=session, yes=yes, as_json=as_json, simulate=False,
                          out=out, err=err, inp=io.StringIO(answers))
    return code, out.getvalue(), err.getvalue()


async def books(settings: Settings) -> tuple[list, list]:
    """(holds, spend by model) read from the database file."""
    async with await Database.open(settings.storage.database) as db:
        ledger = Ledger(db, settings)
        holds = await db.fetchall("SELECT tool, state, estimate_micros, actual_micros FROM holds ORDER BY created_at")
        check = await ledger.check_books()
        assert check.ok, check.differences
        return [tuple(h) for h in holds], await ledger.spend(by="model")


# -- the whole path ------------------------------------------------------------------------------

async def test_a_request_is_planned_priced_confirmed_generated_and_delivered(tmp_path, sim, llm, capsys):
    llm.script = fox_script()
    settings = settings_for(tmp_path, sim, llm)
    code, out, err = await chat(settings, FOX, answers="y\n")
    assert code == 0, err
    assert "Let me find a cheap text-to-video model." in out and "Done! " in out
    assert "→ recommend_models(" in err and "→ estimate_cost(" in err and "estimate_cost $0.27" in err
    assert "Run hailuo_02_text_to_video for $0.27" in err and "[y/N]" in err
    assert "succeeded" in err  # the job's card, with where the clip is
    clip = next(Path(line.split("output:")[1].strip()) for line in err.splitlines() if "output:" in line)
    assert clip.is_file() and clip.stat().st_size > 0

    # the model saw the compact tools, the tool results, and asked for usage in the stream
    first, second, last = llm.requests[0], llm.requests[1], llm.requests[-1]
    assert {t["function"]["name"] for t in first["tools"]} >= {"recommend_models", "list_models", "describe_model",
                                                                "estimate_cost", "generate", "get_quota"}
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert first["messages"][0]["role"] == "system" and first["messages"][1] == {"role": "user", "content": FOX}
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert "hailuo_02_text_to_video" in tool_result(second, "recommend_models")
    assert "veo3_fast" not in tool_result(second, "recommend_models")  # over max_cost_usd
    assert "succeeded" in tool_result(last, "generate")

    holds, spend = await books(settings)
    tokens = [h for h in holds if h[0] == "llm:fake-model"]
    assert len(tokens) == 4 and all(h[1] == "settled" for h in tokens)
    assert all(h[3] == 120 * 2 + 30 * 8 for h in tokens)  # 480 µ$ per call, from the reported usage
    assert ("hailuo_02_text_to_video", "settled", 270_000, 270_000) in holds
    by_model = {row.key: row for row in spend}
    assert by_model["llm:fake-model"].settled_micros == 4 * 480 and by_model["llm:fake-model"].jobs == 4
    assert by_model["hailuo_02_text_to_video"].settled_micros == 270_000
    config = tmp_path / "videogen.toml"
    config.write_text(f'[storage]\ndatabase = "{settings.storage.database}"\n')
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["--config", str(config), "spend", "--by", "model"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "$0.00" in lines["llm:fake-model"] and "$0.27" in lines["hailuo_02_text_to_video"]


async def test_declining_runs_nothing_and_tells_the_model(tmp_path, sim, llm):
    llm.script = fox_script()[:3] + [lambda body: {"text": "OK, nothing was run. " + tool_result(body, "generate")}]
    settings = settings_for(tmp_path, sim, llm)
    code, out, err = await chat(settings, FOX, answers="n\n")
    assert code == 0
    assert "not run; nothing was charged" in err
    assert "The user declined this $0.27 run" in tool_result(llm.requests[-1], "generate")
    holds, _ = await books(settings)
    assert [h for h in holds if not h[0].startswith("llm:")] == []


async def test_a_run_over_the_quota_is_refused_before_asking_and_costs_nothing(tmp_path, sim, llm):
    llm.script = fox_script()[:3] + [lambda body: {"text": tool_result(body, "generate")}]
    settings = settings_for(tmp_path, sim, llm, quotas={"daily_usd": 0.2})
    code, out, err = await chat(settings, FOX, answers="y\n")
    assert code == 0 and "[y/N]" not in err
    refusal = tool_result(llm.requests[-1], "generate")
    assert refusal.startswith("Error: ") and "$0.27" in refusal and "daily" in refusal
    assert "Nothing was submitted or charged" in refusal
    holds, _ = await books(settings)
    assert all(h[0].startswith("llm:") for h in holds)


async def test_a_reply_over_the_budget_is_refused_before_the_model_is_called(tmp_path, sim, llm):
    settings = settings_for(tmp_path, sim, llm, quotas={"daily_usd": 0.01}, usd_per_mtok_output=100)
    with pytest.raises(Exception) as caught:
        await chat(settings, FOX)
    assert "This chat reply costs" in str(caught.value) and "daily" in str(caught.value)
    assert llm.requests == []


async def test_token_holds_are_not_jobs_for_the_job_limits(tmp_path, sim, llm):
    """A chat reply is money, not a job: it passes a jobs-per-hour limit the user has used up."""
    llm.script = [{"text": "Hi."}, {"text": "Hello again."}]
    settings = settings_for(tmp_path, sim, llm, quotas={"jobs_per_hour": 1, "concurrent_jobs": 1, "daily_usd": 5})
    assert (await chat(settings, "hello", session="s"))[0] == 0
    assert (await chat(settings, "and again", session="s"))[0] == 0
    async with await Database.open(settings.storage.database) as db:
        status = await Ledger(db, settings).status(Requester("local"))
    used = {s.kind: s.used for s in status}
    assert used["hourly"] == 0 and used["concurrent"] == 0 and used["daily"] == 2 * 480


# -- failures mid-turn -----------------------------------------------------------------------------

async def test_an_llm_error_mid_turn_says_what_happened_and_charges_only_the_tokens_used(tmp_path, sim, llm):
    llm.script = [fox_script()[0], {"status": 429, "message": "slow down"}]
    settings = settings_for(tmp_path, sim, llm)
    with pytest.raises(Exception) as caught:
        await chat(settings, FOX, session="busy")
    assert "rate-limiting" in str(caught.value) and "sk-test-secret" not in str(caught.value)
    holds, _ = await books(settings)
    assert holds == [("llm:fake-model", "settled", holds[0][2], 480), ("llm:fake-model", "released", holds[1][2], 0)]
    async with await Database.open(settings.storage.database) as db:
        store = ConversationStore(db)
        messages = await store.messages(await store.find("terminal:busy"))
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]


async def test_a_model_that_does_not_answer_in_time_costs_nothing(tmp_path, sim, llm):
    llm.script = [{"sleep": 1.0, "text": "too late"}]
    settings = settings_for(tmp_path, sim, llm, timeout_seconds=0.2)
    with pytest.raises(Exception) as caught:
        await chat(settings, FOX)
    assert "did not answer within 0.2 s" in str(caught.value) and "timeout_seconds" in str(caught.value)
    holds, _ = await books(settings)
    assert [(h[0], h[1], h[3]) for h in holds] == [("llm:fake-model", "released", 0)]


async def test_a_stream_cut_mid_tool_call_is_charged_at_the_estimate(tmp_path, sim, llm):
    llm.script = [{"tool_calls": [("list_models", {"category": "text-to-video"})], "cut": True}]
    settings = settings_for(tmp_path, sim, llm)
    with pytest.raises(Exception) as caught:
        await chat(settings, FOX)
    assert "broke off" in str(caught.value) or "stopped before" in str(caught.value)
    holds, _ = await books(settings)
    assert len(holds) == 1 and holds[0][1] == "settled" and holds[0][3] == holds[0][2] > 0


async def test_a_restart_mid_conversation_continues_it(tmp_path, sim, llm):
    """A crash left a tool call unanswered; the next process replays the conversation, repaired."""
    llm.script = [{"text": "Which style would you like?"}]
    settings = settings_for(tmp_path, sim, llm)
    assert (await chat(settings, FOX, session="fox"))[0] == 0
    async with await Database.open(settings.storage.database) as db:  # the crash: a call stored, never run
        store = ConversationStore(db)
        conversation = await store.find("terminal:fox")
        await store.append(conversation, {"role": "user", "content": "cartoon"})
        await store.append(conversation, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "lost", "type": "function", "function": {"name": "list_models", "arguments": "{}"}}]})
    llm.script = [{"text": "A cartoon fox it is."}]
    code, out, _ = await chat(settings, "still there?", session="fox")
    assert code == 0 and "A cartoon fox it is." in out
    replay = llm.requests[-1]["messages"]
    assert [m["role"] for m in replay] == ["system", "user", "assistant", "user", "assistant", "tool", "user"]
    assert replay[1]["content"] == FOX and replay[5] == {"role": "tool", "tool_call_id": "lost", "content": INTERRUPTED}


async def test_bad_tool_calls_go_back_to_the_model_as_errors(tmp_path, sim, llm):
    llm.script = [{"tool_calls": [("list_models", "{not json"), ("make_video", {}), ("describe_model", {"model": "nope"})]},
                  {"text": "Sorry."}]
    settings = settings_for(tmp_path, sim, llm)
    assert (await chat(settings, FOX))[0] == 0
    results = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "not valid JSON" in results[0] and "There is no tool 'make_video'" in results[1]
    assert results[2].startswith("Error: ") and "nope" in results[2]


async def test_tool_calls_and_generations_per_turn_are_bounded(tmp_path, sim, llm):
    calls = [("list_models", {}), ("get_quota", {}), ("list_jobs", {})]
    llm.script = [{"tool_calls": calls}, {"text": "Here is what I found."}]
    settings = settings_for(tmp_path, sim, llm, max_tool_calls=2)
    assert (await chat(settings, FOX))[0] == 0
    final = llm.requests[-1]
    assert "tools" not in final  # over the bound: answer without tools
    assert "limit of 2 tool calls" in [m for m in final["messages"] if m["role"] == "tool"][-1]["content"]

    llm.script = [{"tool_calls": [("generate", {"model": "hailuo_02_text_to_video", "arguments": HAILUO}),
                                  ("generate", {"model": "hailuo_02_text_to_video", "arguments": HAILUO})]},
                  {"text": "One is done."}]
    code, _, err = await chat(settings, FOX, yes=True)
    results = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert code == 0 and "succeeded" in results[0] and "at most 1 generation(s) per message" in results[1]


async def test_parallel_calls_at_one_index_are_told_apart_by_id():
    parts = ToolCallParts()
    parts.add(0, "a", "list_models", '{"query"')
    parts.add(0, None, None, ': "fox"}')
    parts.add(0, "b", "get_quota", "{}")
    assert [(c.id, c.name, c.arguments) for c in parts.finish()] == [
        ("a", "list_models", '{"query": "fox"}'), ("b", "get_quota", "{}")]


async def test_non_streamed_replies_work_too(tmp_path, sim, llm):
    llm.script = fox_script()
    settings = settings_for(tmp_path, sim, llm, stream=False, confirm_above_usd=1)
    code, out, err = await chat(settings, FOX, as_json=True)
    assert code == 0 and "[y/N]" not in err  # $0.27 is under confirm_above_usd
    data = json.loads(out)
    assert "stream" not in llm.requests[0]
    assert [c["name"] for c in data["tool_calls"]] == ["recommend_models", "estimate_cost", "generate"]
    assert data["tool_calls"][2]["price_usd"] == 0.27 and data["jobs"][0]["state"] == "succeeded"
    assert data["jobs"][0]["outputs"][0]["path"] and data["llm"]["cost_usd"] == 4 * 480 / 1e6


async def test_an_interactive_session_keeps_going_after_an_error(tmp_path, sim, llm):
    llm.script = [{"text": "Hello! What should I make?"}, {"status": 500, "message": "boom"},
                  lambda body: {"text": f"I remember {len([m for m in body['messages'] if m['role'] == 'user'])} messages."}]
    settings = settings_for(tmp_path, sim, llm)
    code, out, err = await chat(settings, None, answers="hi\nfox please\nstill there?\n/exit\n")
    assert code == 0
    assert "Hello! What should I make?" in out and "I remember 3 messages." in out
    assert "error: The language model at" in err and "HTTP 500: boom" in err
    assert err.count("you> ") == 4


# -- the command ---------------------------------------------------------------------------------

def test_without_settings_chat_says_what_to_set(capsys, clean_env):
    code = main(["chat", "hello"])
    err = capsys.readouterr().err
    assert code == 2 and "[llm] model (or VIDEOGEN_LLM_MODEL)" in err and "videogen[chat]" in err


def test_without_the_openai_package_chat_says_what_to_install(capsys, clean_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai → ImportError
    monkeypatch.setenv("VIDEOGEN_LLM_MODEL", "gpt-4.1-mini")
    monkeypatch.setenv("VIDEOGEN_LLM_API_KEY", "sk-not-shown")
    code = main(["chat", "hello"])
    err = capsys.readouterr().err
    assert code == 2 and "needs the openai package: pip install 'videogen[chat]'" in err and "sk-not-shown" not in err


def test_one_shot_with_yes_json_and_simulate(capsys, clean_env, llm, monkeypatch):
    llm.script = fox_script()
    monkeypatch.setenv("VIDEOGEN_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("VIDEOGEN_LLM_MODEL", "fake-model")
    code = main(["chat", FOX, "--yes", "--json", "--simulate"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["jobs"][0]["state"] == "succeeded" and "SIMULATED" in err and "(--yes)" in err
    assert main(["spend", "--by", "model"]) == 0  # the simulation sandbox keeps it off the real books
    assert "llm:fake-model" not in capsys.readouterr().out
