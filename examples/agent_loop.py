"""Your own OpenAI agent loop, with videogen's tools run in process through the Toolkit (quota and all)."""
import asyncio
import json

from openai import AsyncOpenAI

from agent_tools.agent.executor import Executor
from agent_tools.agent.tools import export
from agent_tools.config import load_settings
from agent_tools.toolkit import Toolkit


async def run(prompt: str, client: AsyncOpenAI, model: str, settings=None) -> str:
    toolkit = await Toolkit.open(settings or load_settings())
    executor, tools = Executor(toolkit, mode="compact"), export("openai", "compact")  # or "anthropic"
    me = toolkit.local_account()  # or await toolkit.account_for_token(token): that user's limits apply
    messages = [{"role": "user", "content": prompt}]
    try:
        while True:
            reply = (await client.chat.completions.create(model=model, messages=messages, tools=tools)).choices[0]
            messages.append(reply.message.model_dump(exclude_none=True))
            if not reply.message.tool_calls:
                return reply.message.content
            for call in reply.message.tool_calls:  # generate spends: it runs within the account's quota
                result = await executor.call(me, call.function.name, json.loads(call.function.arguments or "{}"))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result.text})
    finally:
        await toolkit.close()


if __name__ == "__main__":
    print(asyncio.run(run("A cheap 6-second clip of a fox in the snow", AsyncOpenAI(), "gpt-4.1-mini")))
