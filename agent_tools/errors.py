"""Errors a person or an LLM can act on.

Every surface (MCP, Discord, CLI) renders a ``UserError`` as-is: its text says what was wrong and
what to do instead. Anything that is not a ``UserError`` is a bug or an outage and is reported
as such, never with secrets in it.
"""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be served as asked; nothing was submitted or charged."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UnknownTool(UserError):
    """A tool name that is not in the catalog, with the closest names that are."""

    def __init__(self, name: str, suggestions: list[str], available: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        if suggestions:
            hint = "Did you mean " + " or ".join(f"'{s}'" for s in suggestions) + "?"
        else:
            hint = "Available tools: " + ", ".join(available) + "."
        super().__init__(f"Unknown tool '{name}'. {hint}")


class InvalidArguments(UserError):
    """Arguments that fail the model's input schema. ``problems`` names every one of them."""

    def __init__(self, tool: str, problems: list[str]) -> None:
        self.tool = tool
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"Invalid arguments for {tool} ({len(problems)} {noun}):\n{lines}")


class ConfigError(UserError):
    """A configuration file or environment variable that cannot be used as written."""
