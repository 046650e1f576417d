"""Bad input never becomes an internal error (issue 10): parser limits in ``--args-json``, the shape
check every surface shares, and the SSRF guard connecting to the very address it checked."""

from __future__ import annotations

import socket

import httpx
import pytest

from agent_tools.inputs import MAX_DEPTH, shape_problems
from agent_tools.media import MediaError, MediaStore
from agent_tools.providers.base import OutputFile


@pytest.mark.parametrize(("value", "message"), [
    ('{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"prompt": "x", "seed": ' + "9" * 5_000 + "}", "Exceeds the limit"),
    ('{"prompt": ' + "[" * 40 + '"x"' + "]" * 40 + "}", f"nested more than {MAX_DEPTH} levels"),
    ('{"prompt": "x", "seed": 99999999999999999999999}', "far too large"),
    ('{"prompt": "x", "duration": NaN}', "not a number this parameter can take"),
])
@pytest.mark.parametrize("command", ["estimate", "generate"])
def test_args_json_past_the_parsers_limits_is_an_invalid_argument(cli, clean_env, command, value, message):
    code, out, err = cli(command, "pika_text_to_video", "--args-json", value)
    assert code == 2 and out == "" and "Traceback" not in err
    assert "Invalid arguments for pika_text_to_video" in err and message in err


def test_a_long_number_as_an_option_is_an_invalid_argument(cli, clean_env):
    code, _, err = cli("estimate", "pika_text_to_video", "--prompt", "x", "--seed", "9" * 5_000)
    assert code == 2 and "Traceback" not in err and "seed" in err


def test_shape_problems_name_the_field_and_stop_early():
    assert shape_problems({"prompt": "a fox", "images": ["https://x/a.png"], "seed": 7}) == []
    deep: object = "x"
    for _ in range(1_000_000):  # far past Python's recursion limit: the check has no recursion
        deep = [deep]
    assert shape_problems({"prompt": deep}) == [f"prompt: nested more than {MAX_DEPTH} levels deep; no parameter takes that"]
    assert shape_problems({1: "x"}) == ["arguments: names must be text, not int '1'"]
    assert shape_problems({"image": "data:image/png;base64," + "A" * 300_000}) == []  # media.py checks those
    assert "too long" in shape_problems({"prompt": "x" * 300_000})[0]
    assert "more than 10,000 values" in shape_problems({"ids": list(range(20_000))})[-1]


class Rebinding(MediaStore):
    """A resolver that answers a public address first and a private one after (DNS rebinding)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answers = ["93.184.215.14", "127.0.0.1"]
        self.lookups = 0

    async def _resolve(self, host: str, port: int):
        self.lookups += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.answers.pop(0), port))]


async def test_the_download_connects_to_the_address_that_passed_the_check(tmp_path):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers["host"], request.extensions.get("sni_hostname")))
        return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64,
                              headers={"content-type": "video/mp4"})

    store = Rebinding(tmp_path, max_bytes=2**20, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    kept = await store.keep("job", 0, OutputFile(url="https://cdn.example.com/clip.mp4"), "video")
    assert seen == [("93.184.215.14", "cdn.example.com", "cdn.example.com")]
    assert store.lookups == 1, "one lookup: nothing else can answer differently"
    assert kept.path.endswith("0-clip.mp4") and kept.content_type == "video/mp4"


async def test_a_private_answer_is_refused_before_connecting(tmp_path):
    store = Rebinding(tmp_path, max_bytes=2**20, client=httpx.AsyncClient(transport=httpx.MockTransport(
        lambda request: pytest.fail("no connection may be made"))))
    store.answers = ["10.0.0.5"]
    with pytest.raises(MediaError, match="private or local address"):
        await store.keep("job", 0, OutputFile(url="https://cdn.example.com/clip.mp4"), "video")


async def test_discord_options_past_the_limits_are_refused_privately_at_no_charge(tmp_path):
    """Discord sends scalars, but an integer option may still be absurd; a data: URI is no image link there."""
    from agent_tools.simulator import SimSettings, Simulator
    from test_discord_bot import jobs_of, make_bot, make_settings, slash, spent, stop_bot

    async with Simulator(SimSettings(queue_seconds=0, run_seconds=0.05)) as sim:
        bot = await make_bot(make_settings(tmp_path, sim))
        try:
            await slash(bot, "text-to-video pika_text_to_video", prompt="x", seed=10**30)
            await slash(bot, "image-to-video pika_image_to_video", prompt="waves",
                        image_url="data:image/png;base64,PGh0bWw+")
            texts = bot.recorder.ephemeral_texts()
            assert len(texts) == 2 and "far too large" in texts[0] and "is not an http(s):// URL" in texts[1]
            assert await jobs_of(bot) == [] and await spent(bot) == 0
        finally:
            await stop_bot(bot)


def test_mcp_over_stdio_answers_requests_too_deep_or_long_to_read(tmp_path):
    """The SDK's JSON reader refuses such a message; the client still gets an isError result, not silence."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "none.toml").write_text("")
    env = {**os.environ, "VIDEOGEN_DB": str(tmp_path / "v.db"), "VIDEOGEN_CONFIG": str(tmp_path / "none.toml")}
    from processes import guarded

    server = subprocess.Popen(guarded(sys.executable, "-m", "agent_tools.cli", "mcp", "--simulate"), env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def ask(line: str) -> dict:
        server.stdin.write(line + "\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline())

    try:
        ask(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        call = '{"jsonrpc": "2.0", "id": %d, "method": "tools/call", "params": {"name": "pika_text_to_video", ' \
               '"arguments": {"prompt": %s}}}'
        deep = ask(call % (2, "[" * 5_000 + "]" * 5_000))
        long = ask(call % (3, '"x", "seed": ' + "9" * 5_000))
        listed = ask(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}))
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    for answer, request_id in ((deep, 2), (long, 3)):
        assert answer["id"] == request_id and answer["result"]["isError"] is True
        assert "Invalid arguments" in answer["result"]["content"][0]["text"]
    assert listed["id"] == 4 and listed["result"]["tools"], "the server carries on"
