"""Outputs as resource links, jobs as resources, prompts and completions, through the SDK's Client.

In process in both protocol eras, and over streamable HTTP with bearer tokens (per-account listing).
"""

from __future__ import annotations

import base64
import json

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from agent_tools.catalog import CATALOG
from agent_tools.mcp_server import resources
from agent_tools.mcp_server.server import build_server, running_http
from agent_tools.toolkit import Account, Toolkit

from test_mcp_server import make_settings, sim, text_of  # noqa: F401  (sim is a fixture)
from test_mcp_transports import http_client

MODES = ["legacy", "auto"]
ALICE, BOB = Account("alice"), Account("bob")


@pytest.fixture
async def kit(tmp_path, sim):
    toolkit = await Toolkit.open(make_settings(tmp_path, sim))
    yield toolkit
    await toolkit.close()


def serve(kit, account, tools="default"):
    return build_server(kit, lambda ctx: account, local_files=False, tools=tools)


@pytest.mark.parametrize("mode", MODES)
async def test_outputs_come_back_as_resource_links_that_read_back(kit, mode):
    async with Client(serve(kit, ALICE), mode=mode) as client:
        made = await client.call_tool("hunyuan_image_v3", {"prompt": "a poster", "num_images": 2})
        [first, second] = [b for b in made.content if b.type == "resource_link"]
        job_id = made.structured_content["job_id"]
        whole = await client.read_resource(first.uri)
        preview = await client.read_resource(f"{first.uri}/preview")
        job = await client.read_resource(resources.job_uri(job_id))
        templates = await client.list_resource_templates()
        listed = await client.list_resources()
    assert (first.uri, second.uri) == (f"videogen://jobs/{job_id}/outputs/0", f"videogen://jobs/{job_id}/outputs/1")
    outputs = made.structured_content["outputs"]
    assert first.mime_type == outputs[0]["content_type"] and first.size == outputs[0]["size_bytes"] > 0
    assert first.name.endswith(".png")
    [blob] = whole.contents
    data = base64.b64decode(blob.blob)
    assert len(data) == first.size and data.startswith(b"\x89PNG") and blob.mime_type == first.mime_type
    [small] = preview.contents
    assert small.mime_type == "image/png" and len(base64.b64decode(small.blob)) < len(data)
    [record] = job.contents
    parsed = json.loads(record.text)
    assert record.mime_type == "application/json" and parsed["job_id"] == job_id and parsed["state"] == "succeeded"
    assert parsed["params"]["prompt"] == "a poster" and "path" not in parsed["outputs"][0]
    assert {t.uri_template for t in templates.resource_templates} == {
        resources.JOB_TEMPLATE, resources.OUTPUT_TEMPLATE, resources.PREVIEW_TEMPLATE}
    assert [r.uri for r in listed.resources] == [resources.job_uri(job_id)]


async def test_a_video_output_links_and_refuses_files_above_the_stated_size(kit, monkeypatch):
    async with Client(serve(kit, ALICE), mode="legacy") as client:
        made = await client.call_tool("pika_text_to_video", {"prompt": "a fox"})
        [link] = [b for b in made.content if b.type == "resource_link"]
        assert link.mime_type == "video/mp4"
        ok = await client.read_resource(link.uri)
        monkeypatch.setattr(resources, "MAX_READ_BYTES", 10)
        with pytest.raises(MCPError, match=r"more than the 10 a resource read returns; download it from http"):
            await client.read_resource(link.uri)
        with pytest.raises(MCPError, match="only PNG image outputs have one"):
            await client.read_resource(f"{link.uri}/preview")
    assert base64.b64decode(ok.contents[0].blob)[4:8] == b"ftyp"


async def test_unfinished_and_failed_jobs_have_no_links_and_bad_uris_say_what_exists(kit):
    async with Client(serve(kit, ALICE), mode="legacy") as client:
        failed = await client.call_tool("pika_text_to_video", {"prompt": "[sim:content_policy] x"})
        assert not [b for b in failed.content if b.type == "resource_link"]
        with pytest.raises(MCPError, match="has no output 0"):
            await client.read_resource(f"videogen://jobs/{failed.structured_content['job_id']}/outputs/0")
        with pytest.raises(MCPError, match="Unknown resource"):
            await client.read_resource("videogen://elsewhere/1")
        with pytest.raises(MCPError, match="No job 'nope'"):
            await client.read_resource("videogen://jobs/nope")


async def test_accounts_read_and_list_only_their_own_jobs(kit):
    async with Client(serve(kit, ALICE), mode="legacy") as alice:
        made = await alice.call_tool("pika_text_to_video", {"prompt": "mine"})
    job_id = made.structured_content["job_id"]
    async with Client(serve(kit, BOB), mode="auto") as bob:
        listed = await bob.list_resources()
        with pytest.raises(MCPError, match=f"No job '{job_id}'"):
            await bob.read_resource(resources.job_uri(job_id))
        with pytest.raises(MCPError, match=f"No job '{job_id}'"):
            await bob.read_resource(resources.output_uri(job_id, 0))
        completed = await bob.complete(ResourceTemplateReference(uri=resources.JOB_TEMPLATE),
                                       {"name": "job_id", "value": ""})
    assert listed.resources == [] and completed.completion.values == []


async def test_http_lists_each_accounts_jobs(tmp_path, sim):
    async with await Toolkit.open(make_settings(tmp_path, sim)) as kit:
        tokens = {}
        for name in ("alice", "bob"):
            await kit.ledger.add_account(name)
            tokens[name] = await kit.ledger.create_token(name)
        async with running_http(kit) as url:
            transport, client = http_client(url, tokens["alice"])
            async with transport, client:
                made = await client.call_tool("pika_text_to_video", {"prompt": "over http"})
                mine = await client.list_resources()
                read = await client.read_resource(resources.job_uri(made.structured_content["job_id"]))
            transport, client = http_client(url, tokens["bob"], "auto")
            async with transport, client:
                theirs = await client.list_resources()
    assert [r.uri for r in mine.resources] == [resources.job_uri(made.structured_content["job_id"])]
    assert json.loads(read.contents[0].text)["account"] == "alice"
    assert theirs.resources == []


# -- prompts and completions ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_each_models_guide_is_a_prompt(kit, mode):
    async with Client(serve(kit, ALICE, tools="compact"), mode=mode) as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        veo = await client.get_prompt("veo3_fast", {"idea": "a chef explains pasta", "duration": "6s"})
        generic = await client.get_prompt("write_prompt", {"model": "pika_text_to_video", "idea": "a fox"})
        with pytest.raises(MCPError, match="duration='7s' is not allowed for veo3_fast; expected one of 4s, 6s, 8s"):
            await client.get_prompt("veo3_fast", {"idea": "x", "duration": "7s"})
        with pytest.raises(MCPError, match="'idea' argument is required"):
            await client.get_prompt("veo3_fast", {})
    assert set(listed) == set(CATALOG) | {"write_prompt"}
    assert {a.name for a in listed["veo3_fast"].arguments} >= {"idea", "duration", "aspect_ratio", "resolution"}
    [message] = veo.messages
    text = message.content.text
    assert CATALOG["veo3_fast"].prompt_guide in text and "a chef explains pasta" in text
    assert "duration=6s" in text and 'call generate with model "veo3_fast"' in text
    assert CATALOG["pika_text_to_video"].prompt_guide in generic.messages[0].content.text


@pytest.mark.parametrize("mode", MODES)
async def test_completion_offers_model_names_enum_values_and_job_ids(kit, mode):
    async with Client(serve(kit, ALICE), mode=mode) as client:
        made = await client.call_tool("pika_text_to_video", {"prompt": "x"})
        models = await client.complete(PromptReference(name="write_prompt"), {"name": "model", "value": "sora_2_p"})
        durations = await client.complete(PromptReference(name="veo3_fast"), {"name": "duration", "value": ""})
        in_context = await client.complete(PromptReference(name="write_prompt"), {"name": "aspect_ratio", "value": "9"},
                                           context_arguments={"model": "pika_text_to_video"})
        jobs = await client.complete(ResourceTemplateReference(uri=resources.JOB_TEMPLATE),
                                     {"name": "job_id", "value": made.structured_content["job_id"][:3]})
    assert models.completion.values == ["sora_2_pro_text_to_video", "sora_2_pro_image_to_video"]
    assert durations.completion.values == ["4s", "6s", "8s"]
    assert in_context.completion.values == ["9:16"]
    assert jobs.completion.values == [made.structured_content["job_id"]]


# -- confirmation above a price (elicitation) ------------------------------------------------------

class Answer:
    """An elicitation callback that records each question and gives a fixed answer."""

    def __init__(self, action: str, confirm: bool = True) -> None:
        self.action, self.confirm, self.asked = action, confirm, []

    async def __call__(self, context, params):
        from mcp_types import ElicitResult

        self.asked.append(params.message)
        return ElicitResult(action=self.action, content={"confirm": self.confirm} if self.action == "accept" else None)


async def confirming_kit(tmp_path, sim, threshold="1"):
    settings = make_settings(tmp_path, sim, {"daily_usd": "10"})
    settings = settings.model_copy(update={"mcp": settings.mcp.model_copy(update={"confirm_above_usd": threshold})})
    return await Toolkit.open(settings)


@pytest.mark.parametrize("mode", MODES)
async def test_a_run_above_the_threshold_asks_first_and_a_no_costs_nothing(tmp_path, sim, mode):
    async with await confirming_kit(tmp_path, sim) as kit:
        no, yes = Answer("decline"), Answer("accept")
        async with Client(serve(kit, ALICE), mode=mode, elicitation_callback=no) as client:
            refused = await client.call_tool("veo3_fast", {"prompt": "x", "duration": "4s"})
            cheap = await client.call_tool("pika_text_to_video", {"prompt": "below the threshold"})
            jobs_after_no = await client.call_tool("list_jobs", {})
        async with Client(serve(kit, ALICE, tools="compact"), mode=mode, elicitation_callback=yes) as client:
            ran = await client.call_tool("generate", {"model": "veo3_fast", "arguments": {"prompt": "x", "duration": "4s"}})
        [daily] = [s for s in await kit.quota_status(ALICE) if s.kind == "daily"]
    assert refused.is_error and "not confirmed. Nothing was submitted or charged." in text_of(refused)
    assert len(no.asked) == 1 and "$1.60" in no.asked[0]  # asked once, with the price; not for the $0.20 run
    assert not cheap.is_error and len(jobs_after_no.structured_content["jobs"]) == 1
    assert not ran.is_error and ran.structured_content["state"] == "succeeded" and len(yes.asked) == 1
    assert daily.used == 200_000 + 1_600_000


async def test_dismissing_or_unticking_the_confirmation_runs_nothing(tmp_path, sim):
    async with await confirming_kit(tmp_path, sim) as kit:
        for answer in (Answer("cancel"), Answer("accept", confirm=False)):
            async with Client(serve(kit, ALICE), mode="legacy", elicitation_callback=answer) as client:
                result = await client.call_tool("veo3_fast", {"prompt": "x"})
            assert result.is_error and "not confirmed" in text_of(result)
        assert await kit.list_jobs(ALICE) == []


@pytest.mark.parametrize("mode", MODES)
async def test_clients_without_elicitation_run_as_before(tmp_path, sim, mode):
    async with await confirming_kit(tmp_path, sim, threshold="0") as kit:
        async with Client(serve(kit, ALICE), mode=mode) as client:
            ran = await client.call_tool("pika_text_to_video", {"prompt": "x"})
    assert not ran.is_error and ran.structured_content["state"] == "succeeded"
