"""A user's own agent loop calling videogen through the execution layer: ``examples/agent_loop.py``
(the loop the README shows) against the scripted fake OpenAI server and the simulator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from openai import AsyncOpenAI

from agent_tools.agent import tools as agent_tools

from fake_llm import tool_result
from test_chat import HAILUO, llm, settings_for  # noqa: F401  (llm is a fixture)
from test_mcp_server import sim  # noqa: F401

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "agent_loop.py"


def load_example():
    spec = importlib.util.spec_from_file_location("agent_loop_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_readme_loop_generates_through_the_toolkit(tmp_path, sim, llm):
    llm.script = [
        {"tool_calls": [("estimate_cost", {"model": "hailuo_02_text_to_video", "arguments": HAILUO})]},
        {"tool_calls": [("generate", {"model": "hailuo_02_text_to_video", "arguments": HAILUO})]},
        lambda body: {"text": "Here it is: " + tool_result(body, "generate").splitlines()[0]},
    ]
    settings = settings_for(tmp_path, sim, llm)
    client = AsyncOpenAI(base_url=llm.base_url, api_key="x", max_retries=0)
    answer = await load_example().run("a fox in the snow", client, "fake-model", settings)
    await client.close()
    assert answer.startswith("Here it is: Job ") and "succeeded" in answer and "$0.27 charged" in answer
    assert llm.requests[0]["tools"] == agent_tools.export("openai", "compact")
    assert "$0.27" in tool_result(llm.requests[1], "estimate_cost")


def test_the_readme_shows_the_example():
    readme = (EXAMPLE.parent.parent / "README.md").read_text(encoding="utf-8")
    body = EXAMPLE.read_text(encoding="utf-8").split('"""', 2)[2].strip()
    assert body in readme, "README's agent-loop example must be examples/agent_loop.py"
