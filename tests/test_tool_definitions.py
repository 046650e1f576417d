"""The pre-generated tool sets (``agent/tool_definitions.json``, issue 11) are a build artefact of the
catalog: the file must equal what the catalog generates now, ``tool_set`` must give exactly the tools
``build_tool_set`` builds, and a missing file must only cost time, never change a tool.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent_tools.agent import MODES, definitions
from agent_tools.agent.generate import generate, main
from agent_tools.agent.tools import build_tool_set, mcp_definition, tool_set


def test_the_file_is_what_the_catalog_generates_now():
    assert definitions.FILE.read_text(encoding="utf-8") == definitions.render(generate()), (
        f"agent/tool_definitions.json is stale: run `{definitions.REGENERATE}` (or `make tool-definitions`)")


@pytest.mark.parametrize("mode", MODES)
def test_tool_set_reads_the_same_tools_the_catalog_builds(mode):
    stored, built = tool_set(mode), build_tool_set(mode)
    assert stored == built
    assert [t.model for t in stored] == [t.model for t in built]  # the catalog's own ModelSpec objects
    assert [mcp_definition(t) for t in stored] == [definitions.mcp_wire(e) for e in definitions.load(mode)]


def test_each_load_gives_fresh_objects_a_caller_may_change():
    first = tool_set("default")
    first[0].input_schema["properties"].clear()
    assert tool_set("default")[0].input_schema["properties"]


@pytest.mark.parametrize("mode", MODES)
def test_without_the_file_the_sets_are_built_from_the_catalog(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(definitions, "FILE", tmp_path / "missing.json")
    monkeypatch.setattr(definitions, "_text", None)
    assert definitions.load(mode) is None
    assert tool_set(mode) == build_tool_set(mode)


def test_a_file_naming_other_models_is_not_used(tmp_path, monkeypatch):
    data = generate()
    data["modes"]["default"] = data["modes"]["default"][1:]  # a model added to the catalog since
    monkeypatch.setattr(definitions, "_text", definitions.render(data))
    assert tool_set("default") == build_tool_set("default")


def test_the_command_rewrites_a_stale_file_and_checks_it(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "tool_definitions.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(definitions, "FILE", stale)
    assert main(["--check"]) == 1
    assert definitions.REGENERATE in capsys.readouterr().err
    assert main([]) == 0 and main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == definitions.render(generate())


def test_the_shipped_file_passes_the_command_line_check():
    done = subprocess.run([sys.executable, "-m", "agent_tools.agent.generate", "--check"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
