"""``videogen mcp`` wiring and ``videogen mcp install-claude`` (the Claude Desktop config entry)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent_tools.cli import main as videogen
from agent_tools.cli import mcp as cli_mcp
from agent_tools.mcp_server import claude_desktop
from agent_tools.config import load_settings


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = videogen(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_adds_mcp_with_install_claude():
    parser = argparse.ArgumentParser()
    cli_mcp.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mcp", "--http", "--host", "0.0.0.0", "--port", "9000", "--simulate"])
    assert (args.http, args.host, args.port, args.simulate, args.func) == (True, "0.0.0.0", 9000, True, cli_mcp.cmd_mcp)
    args = parser.parse_args(["mcp"])
    assert (args.http, args.host, args.port) == (False, None, None)
    args = parser.parse_args(["mcp", "install-claude", "--write", "--config-file", "x.json"])
    assert args.func is cli_mcp.cmd_install_claude and args.write and args.config_file == "x.json"


def test_videogen_mcp_once_the_cli_registers_it():
    from agent_tools import cli

    args = cli.build_parser().parse_args(["mcp", "install-claude"])
    assert args.func is cli_mcp.cmd_install_claude


@pytest.mark.parametrize(("platform", "env", "expected"), [
    ("darwin", {}, Path.home() / "Library/Application Support/Claude/claude_desktop_config.json"),
    ("win32", {"APPDATA": "C:/Users/me/AppData/Roaming"},
     Path("C:/Users/me/AppData/Roaming/Claude/claude_desktop_config.json")),
    ("linux", {"XDG_CONFIG_HOME": "/cfg"}, Path("/cfg/Claude/claude_desktop_config.json")),
    ("linux", {}, Path.home() / ".config/Claude/claude_desktop_config.json"),
])
def test_claude_desktop_config_path(platform, env, expected):
    assert claude_desktop.config_path(env, platform) == expected


def test_entry_uses_absolute_paths_and_placeholders_for_keys_from_the_shell(clean_env, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "fal-secret-123")
    monkeypatch.setenv("VIDEOGEN_DB", "data/videogen.db")
    entry = claude_desktop.server_entry(load_settings())
    assert Path(entry["command"]).is_absolute()
    assert entry["args"] in (["mcp"], ["-m", "agent_tools.cli", "mcp"])
    assert entry["env"]["FAL_KEY"] == "<paste your FAL_KEY here>"
    assert entry["env"]["WAVESPEED_API_KEY"] == "<paste your WAVESPEED_API_KEY here>"
    assert entry["env"]["VIDEOGEN_DB"] == str(clean_env / "data" / "videogen.db")
    assert "VIDEOGEN_CONFIG" not in entry["env"]
    assert "fal-secret-123" not in json.dumps(entry)


def test_include_keys_copies_the_shells_keys(clean_env, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "fal-secret-123")
    entry = claude_desktop.server_entry(load_settings(), include_keys=True)
    assert entry["env"]["FAL_KEY"] == "fal-secret-123"
    assert entry["env"]["WAVESPEED_API_KEY"].startswith("<paste")  # nothing to copy


def test_keys_in_the_config_file_stay_there(clean_env):
    config = clean_env / "videogen.toml"
    config.write_text('[fal]\nkey = "fal-from-file"\n[wavespeed]\nkey = "ws-from-file"\n')
    entry = claude_desktop.server_entry(load_settings(), include_keys=True)
    assert entry["env"] == {"VIDEOGEN_CONFIG": str(config)}  # absolute: Claude's working directory differs


def test_a_shell_key_does_not_shadow_the_files_key(clean_env, monkeypatch):
    (clean_env / "videogen.toml").write_text('[fal]\nkey = "fal-from-file"\n')
    monkeypatch.setenv("FAL_KEY", "fal-from-shell")
    entry = claude_desktop.server_entry(load_settings())
    assert "FAL_KEY" not in entry["env"] and entry["env"]["WAVESPEED_API_KEY"].startswith("<paste")


def test_simulate_entry_needs_no_keys(clean_env):
    entry = claude_desktop.server_entry(load_settings(), simulate=True)
    assert entry["args"][-2:] == ["mcp", "--simulate"] and "env" not in entry


def test_print_shows_the_snippet_and_what_to_do(clean_env, capsys):
    code, out, err = run(capsys, "mcp", "install-claude", "--config-file", str(clean_env / "claude.json"))
    assert code == 0
    snippet = json.loads(out)
    entry = snippet["mcpServers"]["videogen"]
    assert Path(entry["command"]).is_absolute() and "mcp" in entry["args"]
    assert "--write" in err and "Replace FAL_KEY and WAVESPEED_API_KEY" in err and "start it again" in err
    assert not (clean_env / "claude.json").exists()


def test_write_merges_keeps_other_servers_and_backs_up(clean_env, capsys):
    path = clean_env / "Claude" / "claude_desktop_config.json"
    path.parent.mkdir()
    original = {"mcpServers": {"other": {"command": "/usr/bin/other", "args": []}}, "globalShortcut": "Ctrl+Space"}
    path.write_text(json.dumps(original))
    code, out, _ = run(capsys, "mcp", "install-claude", "--write", "--config-file", str(path))
    assert code == 0 and str(path) in out
    written = json.loads(path.read_text())
    assert written["mcpServers"]["other"] == original["mcpServers"]["other"]
    assert written["globalShortcut"] == "Ctrl+Space"
    assert "videogen" in written["mcpServers"]
    [backup] = list(path.parent.glob("claude_desktop_config.json.*.bak"))
    assert json.loads(backup.read_text()) == original and str(backup) in out
    # Running it again replaces the entry, not duplicates it.
    run(capsys, "mcp", "install-claude", "--write", "--config-file", str(path), "--name", "videogen")
    assert list(json.loads(path.read_text())["mcpServers"]) == ["other", "videogen"]


def test_write_creates_a_missing_file(clean_env, capsys):
    path = clean_env / "new" / "claude_desktop_config.json"
    code, _, _ = run(capsys, "mcp", "install-claude", "--write", "--simulate", "--config-file", str(path))
    assert code == 0
    assert json.loads(path.read_text())["mcpServers"]["videogen"]["args"][-1] == "--simulate"


def test_write_refuses_a_broken_file_and_leaves_it_alone(clean_env, capsys):
    path = clean_env / "claude_desktop_config.json"
    path.write_text('{"mcpServers": {"other": ')
    code, _, err = run(capsys, "mcp", "install-claude", "--write", "--config-file", str(path))
    assert code == 2 and "not valid JSON" in err and "Nothing was changed" in err
    assert path.read_text() == '{"mcpServers": {"other": '
    assert list(clean_env.glob("*.bak")) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_written_keys_make_the_file_private(clean_env, capsys, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "fal-secret-123")
    path = clean_env / "claude_desktop_config.json"
    code, _, err = run(capsys, "mcp", "install-claude", "--write", "--include-keys", "--config-file", str(path))
    assert code == 0 and "keep that file private" in err
    assert path.stat().st_mode & 0o777 == 0o600


def test_placeholder_keys_count_as_unset(clean_env, monkeypatch, capsys):
    monkeypatch.setenv("FAL_KEY", claude_desktop.placeholder("FAL_KEY"))
    monkeypatch.setenv("WAVESPEED_API_KEY", "ws-real")
    settings = cli_mcp.without_placeholder_keys(load_settings())
    assert settings.fal.key is None and settings.wavespeed.key == SecretStr("ws-real")
    assert "FAL_KEY is still the placeholder" in capsys.readouterr().err


def test_two_writes_in_the_same_second_keep_both_backups(clean_env):
    path = clean_env / "claude_desktop_config.json"
    path.write_text(json.dumps({"mcpServers": {"first": {"command": "a"}}}))
    entry = {"command": "/abs/videogen", "args": ["mcp"]}
    same_second = 1_800_000_000.0
    one = claude_desktop.write_entry(path, entry, "videogen", now=same_second)
    path.write_text(json.dumps({"mcpServers": {"second": {"command": "b"}}}))
    two = claude_desktop.write_entry(path, entry, "videogen", now=same_second)
    assert one != two
    assert json.loads(one.read_text())["mcpServers"] == {"first": {"command": "a"}}
    assert json.loads(two.read_text())["mcpServers"] == {"second": {"command": "b"}}


def test_a_placeholder_key_refusal_names_the_placeholder_and_the_file(clean_env, monkeypatch):
    monkeypatch.setenv("FAL_KEY", claude_desktop.placeholder("FAL_KEY"))
    hints = cli_mcp.placeholder_hints(load_settings())
    assert list(hints) == ["fal"]
    assert '"<paste your FAL_KEY here>" in claude_desktop_config.json' in hints["fal"]
    assert "restart Claude Desktop" in hints["fal"]
