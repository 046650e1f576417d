"""``python -m agent_tools.agent.generate``: rewrite ``tool_definitions.json`` from the catalog.

The file (see ``definitions``) is what every start reads instead of building each model's schema;
run this after changing a model or a tool (``--check`` only says whether the file is current, exit
1 if not). tests/test_tool_definitions.py fails while it is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from . import MODES, definitions
from .tools import AgentTool, build_tool_set


def entry(tool: AgentTool) -> dict[str, Any]:
    """One tool as stored: its definition, and its model by name."""
    return {**{name: getattr(tool, name) for name in definitions.FIELDS},
            "model": None if tool.model is None else tool.model.tool}


def generate() -> dict[str, Any]:
    """What the file should hold: every mode's tool set, built from the catalog now."""
    return {"generated_by": definitions.REGENERATE,
            "modes": {mode: [entry(t) for t in build_tool_set(mode)] for mode in MODES}}


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    file = definitions.FILE
    current = definitions.render(generate())
    stored = file.read_text(encoding="utf-8") if file.exists() else ""
    if "--check" in args:
        if stored == current:
            print(f"{file.name} is current.")
            return 0
        print(f"{file.name} differs from what the catalog generates: run `{definitions.REGENERATE}`.", file=sys.stderr)
        return 1
    if stored != current:
        file.write_text(current, encoding="utf-8")
        print(f"wrote {file}")
    else:
        print(f"{file.name} was already current.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
