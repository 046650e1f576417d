"""Claude Desktop's ``claude_desktop_config.json``: where it is and the ``videogen`` entry in it.

Claude Desktop starts stdio servers itself, with an empty environment and its own working
directory, so the entry uses absolute paths and carries what the server needs in ``env``:
``VIDEOGEN_CONFIG`` when a config file is in use, the non-secret ``VIDEOGEN_*`` variables that are
set now, and the provider keys — as placeholders unless the user asks for the real values with
``--include-keys`` (keys kept in the config file need no entry at all).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import ENV_OVERRIDES, Settings
from ..errors import UserError

SERVER_NAME = "videogen"
KEY_VARS = {("fal", "key"): "FAL_KEY", ("wavespeed", "key"): "WAVESPEED_API_KEY"}
SECRET_VARS = frozenset({"FAL_KEY", "WAVESPEED_API_KEY", "DISCORD_TOKEN"})


def placeholder(var: str) -> str:
    """What stands in for a key the user still has to paste (the server treats it as unset)."""
    return f"<paste your {var} here>"


def is_placeholder(value: str | None) -> bool:
    return bool(value) and value.startswith("<") and value.endswith(">")  # type: ignore[union-attr]


def config_path(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Where Claude Desktop reads its config on this platform."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if platform == "win32":
        base = env.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / "Claude" / "claude_desktop_config.json"
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "Claude" / "claude_desktop_config.json"


def launcher(mcp_args: list[str]) -> tuple[str, list[str]]:
    """The absolute command that starts ``videogen mcp`` with this Python.

    The venv's ``videogen`` script when it exists next to this interpreter, else
    ``python -m agent_tools.cli``, which needs nothing on PATH.
    """
    python = Path(sys.executable).absolute()  # not resolved: a venv's python is a symlink that must stay one
    script = python.with_name("videogen.exe" if sys.platform == "win32" else "videogen")
    if script.is_file():
        return str(script), ["mcp", *mcp_args]
    return str(python), ["-m", "agent_tools.cli", "mcp", *mcp_args]


def server_entry(settings: Settings, *, include_keys: bool = False, simulate: bool = False,
                 env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``mcpServers`` entry for videogen, as Claude Desktop wants it."""
    env = os.environ if env is None else env
    command, args = launcher(["--simulate"] if simulate else [])
    entry_env: dict[str, str] = {}
    origin = settings.origin
    if origin.file is not None:
        entry_env["VIDEOGEN_CONFIG"] = str(Path(origin.file).absolute())
    for var, path in ENV_OVERRIDES:
        if var not in SECRET_VARS and env.get(var):
            value = env[var]
            entry_env[var] = str(Path(value).expanduser().absolute()) if path[0] == "storage" else value
    if not simulate:
        for path, var in KEY_VARS.items():
            section = getattr(settings, path[0])
            key = section.key.get_secret_value() if section.key is not None else None
            if _file_has(origin.file, path):
                continue  # the config file has it, and VIDEOGEN_CONFIG points there
            entry_env[var] = key if (include_keys and key and not is_placeholder(key)) else placeholder(var)
    entry: dict[str, Any] = {"command": command, "args": args}
    if entry_env:
        entry["env"] = entry_env
    return entry


def _file_has(file: Path | None, path: tuple[str, str]) -> bool:
    """Whether the config file itself sets this key (the environment may override it here, not there)."""
    if file is None:
        return False
    try:
        data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    section = data.get(path[0])
    return isinstance(section, dict) and bool(section.get(path[1]))


def snippet(entry: dict[str, Any], name: str = SERVER_NAME) -> str:
    return json.dumps({"mcpServers": {name: entry}}, indent=2)


def backup_path(path: Path, now: float | None = None) -> Path:
    """``claude_desktop_config.json.20261201-223000.bak``, or ``….bak.2``, ``….bak.3`` when that exists:
    two runs in the same second must not overwrite the first backup."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = path.with_name(f"{path.name}.{stamp}.bak.{counter}")
    return candidate


def write_entry(path: Path, entry: dict[str, Any], name: str = SERVER_NAME, *, now: float | None = None) -> Path | None:
    """Merge the entry into the config file, keeping everything else; returns the backup's path.

    A file that is not valid JSON is left alone (``UserError``): it is the user's, and a guess
    could lose their other servers.
    """
    data: dict[str, Any] = {}
    backup = None
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if text.strip():
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix or move it, "
                                "then run this again. Nothing was changed.") from None
            if not isinstance(data, dict):
                raise UserError(f"{path} does not hold a JSON object; nothing was changed.")
        backup = backup_path(path, now)
        shutil.copy2(path, backup)
    servers = data.get("mcpServers")
    if servers is None:
        servers = data["mcpServers"] = {}
    elif not isinstance(servers, dict):
        raise UserError(f"{path}: 'mcpServers' is not an object; nothing was changed.")
    servers[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if backup is not None:
        shutil.copymode(backup, temp)
    if sys.platform != "win32" and any(is_secret(v) for v in entry.get("env", {}).items()):
        temp.chmod(0o600)
    os.replace(temp, path)
    return backup


def is_secret(item: tuple[str, str]) -> bool:
    var, value = item
    return var in SECRET_VARS and not is_placeholder(value)
