"""The language model client: the official ``openai`` SDK pointed at any OpenAI-compatible server.

``[llm] base_url`` / ``model`` / ``api_key`` choose the server (OpenAI, OpenRouter, Ollama, vLLM,
LM Studio, Anthropic's compatibility layer). ``complete`` streams when ``[llm] stream`` is on,
putting ``tool_calls`` fragments together by index (and by id: Ollama sends parallel calls all at
index 0), and asks for a final usage chunk. Every failure becomes an ``LlmError`` whose text says
what happened and what to do, never the key; ``partial`` says whether any answer had arrived (then
the tokens were spent and are charged).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import LlmSettings
from ..errors import UserError

INSTALL_HINT = "pip install 'videogen[chat]'"

TextCallback = Callable[[str], Awaitable[None] | None]


class LlmUnavailable(UserError):
    """The chat agent cannot start: the ``openai`` package or an ``[llm]`` setting is missing."""


class LlmError(UserError):
    """A model call failed. ``partial``: part of an answer had arrived, so tokens were used."""

    def __init__(self, message: str, *, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text exactly as the model wrote it

    def as_message_part(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass
class Completion:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None

    def as_message(self) -> dict[str, Any]:
        """The assistant message to store and replay, in the Chat Completions shape."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [c.as_message_part() for c in self.tool_calls]
        return message


class ToolCallParts:
    """Puts streamed ``tool_calls`` fragments together: by ``index``, opening a new slot when a
    different non-empty ``id`` arrives at an occupied index (Ollama's parallel calls at index 0)."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []
        self._slot: dict[int, int] = {}

    def add(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> None:
        slot = self._slot.get(index)
        if slot is None or (call_id and self.calls[slot].id and call_id != self.calls[slot].id):
            self.calls.append(ToolCall(call_id or "", "", ""))
            slot = self._slot[index] = len(self.calls) - 1
        call = self.calls[slot]
        if call_id and not call.id:
            call.id = call_id
        if name and not call.name:  # the first fragment names the function; some servers repeat it
            call.name = name
        if arguments:
            call.arguments += arguments

    def finish(self) -> list[ToolCall]:
        for number, call in enumerate(self.calls):
            if not call.id:
                call.id = f"call_{number}"
        return [c for c in self.calls if c.name]


class LlmClient:
    """One endpoint and model. Build it with ``from_settings`` (checks the extra and the settings)."""

    def __init__(self, settings: LlmSettings, client: Any) -> None:
        self.settings = settings
        self.model: str = settings.model or ""
        self._client = client
        self._secret = settings.api_key.get_secret_value() if settings.api_key else ""

    @classmethod
    def from_settings(cls, settings: LlmSettings, *, http_client: Any = None) -> "LlmClient":
        check_settings(settings)
        try:
            import openai
        except ImportError:
            raise LlmUnavailable(f"The chat agent needs the openai package: {INSTALL_HINT}") from None
        key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"
        client = openai.AsyncOpenAI(base_url=settings.base_url, api_key=key, timeout=settings.timeout_seconds,
                                    max_retries=settings.max_retries,
                                    **({"http_client": http_client} if http_client is not None else {}))
        return cls(settings, client)

    async def aclose(self) -> None:
        await self._client.close()

    @property
    def where(self) -> str:
        return self.settings.base_url or "OpenAI's API"

    async def complete(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None, *,
                       on_text: TextCallback | None = None) -> Completion:
        """One model call. Streams when configured, calling ``on_text`` with each piece of text."""
        request: dict[str, Any] = {"model": self.model, "messages": list(messages),
                                   "max_tokens": self.settings.max_tokens}
        if tools:
            request["tools"] = list(tools)
        received = False
        try:
            if not self.settings.stream:
                response = await self._client.chat.completions.create(**request)
                return _from_response(response)
            stream = await self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True})
            completion, parts = Completion(), ToolCallParts()
            async for chunk in stream:
                received = True
                if chunk.usage is not None:
                    completion.usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if delta is not None and delta.content:
                        completion.text += delta.content
                        if on_text is not None:
                            outcome = on_text(delta.content)
                            if outcome is not None:
                                await outcome
                    for part in (delta.tool_calls or ()) if delta is not None else ():
                        fn = part.function
                        parts.add(part.index, part.id, fn.name if fn else None, fn.arguments if fn else None)
                    if choice.finish_reason:
                        completion.finish_reason = choice.finish_reason
            completion.tool_calls = parts.finish()
            if completion.finish_reason is None:
                raise LlmError(f"The language model's answer from {self.where} stopped before it was complete; "
                               "try again.", partial=True)
            return completion
        except LlmError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the SDK's errors, or the connection failing mid-stream
            raise self._explain(exc, received) from None

    def _explain(self, exc: Exception, partial: bool) -> LlmError:
        import openai

        where = self.where
        if isinstance(exc, openai.APITimeoutError):
            text = (f"The language model at {where} did not answer within {self.settings.timeout_seconds:g} s; "
                    "try again, or raise [llm] timeout_seconds.")
        elif isinstance(exc, openai.RateLimitError):
            text = (f"The language model at {where} is rate-limiting requests (HTTP 429); wait a minute and "
                    "try again.")
        elif isinstance(exc, openai.AuthenticationError):
            text = (f"The language model at {where} refused the API key (HTTP 401); check [llm] api_key "
                    "(or VIDEOGEN_LLM_API_KEY).")
        elif isinstance(exc, openai.NotFoundError):
            text = (f"The language model at {where} does not know model '{self.model}' (HTTP 404); check "
                    "[llm] model and [llm] base_url.")
        elif isinstance(exc, openai.APIStatusError):
            text = (f"The language model at {where} answered HTTP {exc.status_code}: "
                    f"{self._scrub(_short(exc))}")
        elif isinstance(exc, openai.APIConnectionError) and not partial:
            text = f"Could not reach the language model at {where}; check [llm] base_url and that the server runs."
        else:
            text = f"The language model's answer from {where} broke off ({type(exc).__name__}); try again."
        return LlmError(text, partial=partial)

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "[hidden]") if self._secret else text


def check_settings(settings: LlmSettings) -> None:
    """``LlmUnavailable`` naming exactly what to set, if the settings cannot reach a model."""
    missing = []
    if not settings.model:
        missing.append("[llm] model (or VIDEOGEN_LLM_MODEL), e.g. gpt-4.1-mini")
    if settings.api_key is None and settings.base_url is None:
        missing.append("[llm] api_key (or VIDEOGEN_LLM_API_KEY), or [llm] base_url (or VIDEOGEN_LLM_BASE_URL) "
                       "for a local server such as Ollama")
    if missing:
        raise LlmUnavailable("The chat agent has no language model configured. Set " + "; and ".join(missing)
                             + f". It also needs the chat extra, if not installed yet: {INSTALL_HINT}")


def _short(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if message:
            return str(message)[:300]
    return str(getattr(exc, "message", "") or type(exc).__name__)[:300]


def _from_response(response: Any) -> Completion:
    choice = response.choices[0] if response.choices else None
    completion = Completion()
    if choice is not None:
        completion.text = choice.message.content or ""
        completion.finish_reason = choice.finish_reason
        completion.tool_calls = [ToolCall(c.id or f"call_{n}", c.function.name, c.function.arguments or "")
                                 for n, c in enumerate(choice.message.tool_calls or ())]
    if response.usage is not None:
        completion.usage = Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
    return completion


def parse_arguments(text: str) -> dict[str, Any]:
    """A tool call's arguments as an object; ``ValueError`` with a reason the model can act on."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON ({exc.msg} at character {exc.pos}); "
                         "send one JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("the arguments must be a JSON object")
    return value
