"""Discord's documented limits for application commands, checked before anything is synced.

discord.py checks only the name pattern and the 25 children of a group; everything else (100-character
descriptions, 25 options, 25 choices, the 8,000 characters of one command) is refused by Discord at
sync time with a 400 that names a JSON path. ``validate_payload`` finds the same problems offline,
so ``videogen discord --dump-commands`` and the tests catch them first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

NAME = re.compile(r"^[-_\w]{1,32}$")  # Discord also allows ' and some scripts; discord.py does not
MAX_DESCRIPTION = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_CHOICE_TEXT = 100
MAX_STRING_LENGTH = 6000
MAX_COMMAND_CHARS = 8000
MAX_COMMANDS = 100
MAX_NUMBER = 2**53

SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, NUMBER, ATTACHMENT = 1, 2, 3, 4, 5, 10, 11


def command_chars(node: Mapping[str, Any]) -> int:
    """Characters Discord counts against the 8,000 of one command: names, descriptions and choice
    names and values, of the command, its subcommands, groups, options and choices."""
    total = len(node.get("name", "")) + len(node.get("description", ""))
    for choice in node.get("choices") or ():
        total += len(str(choice.get("name", ""))) + len(str(choice.get("value", "")))
    return total + sum(command_chars(option) for option in node.get("options") or ())


def _check_name(name: Any, where: str, problems: list[str]) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}: name {name!r} must be 1–32 letters, digits, '-' or '_'")
    elif name != name.lower():
        problems.append(f"{where}: name {name!r} must be lowercase")


def _check_description(node: Mapping[str, Any], where: str, problems: list[str]) -> None:
    description = node.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= MAX_DESCRIPTION:
        size = len(description) if isinstance(description, str) else "no"
        problems.append(f"{where}: description must be 1–{MAX_DESCRIPTION} characters (has {size})")


def _check_option(option: Mapping[str, Any], where: str, problems: list[str]) -> None:
    kind = option.get("type")
    choices = option.get("choices") or []
    if len(choices) > MAX_CHOICES:
        problems.append(f"{where}: {len(choices)} choices, at most {MAX_CHOICES}")
    if choices and option.get("autocomplete"):
        problems.append(f"{where}: choices and autocomplete cannot both be set")
    if choices and kind not in (STRING, INTEGER, NUMBER):
        problems.append(f"{where}: only string, integer and number options take choices")
    for index, choice in enumerate(choices):
        name, value = choice.get("name"), choice.get("value")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_CHOICE_TEXT:
            problems.append(f"{where}.choices[{index}]: name must be 1–{MAX_CHOICE_TEXT} characters")
        if isinstance(value, str) and len(value) > MAX_CHOICE_TEXT:
            problems.append(f"{where}.choices[{index}]: value must be at most {MAX_CHOICE_TEXT} characters")
        expected = {STRING: (str,), INTEGER: (int,), NUMBER: (int, float)}.get(kind, ())
        if expected and (not isinstance(value, expected) or isinstance(value, bool)):
            problems.append(f"{where}.choices[{index}]: value {value!r} does not match the option type")
    for key, low, high in (("min_length", 0, MAX_STRING_LENGTH), ("max_length", 1, MAX_STRING_LENGTH)):
        if key in option and not (kind == STRING and low <= option[key] <= high):
            problems.append(f"{where}: {key} must be {low}–{high} on a string option")
    for key in ("min_value", "max_value"):
        if key in option and not (kind in (INTEGER, NUMBER) and -MAX_NUMBER <= option[key] <= MAX_NUMBER):
            problems.append(f"{where}: {key} must be within ±2^53 on an integer or number option")
    if option.get("min_value") is not None and option.get("max_value") is not None \
            and option["min_value"] > option["max_value"]:
        problems.append(f"{where}: min_value is above max_value")


def _check_options(node: Mapping[str, Any], where: str, problems: list[str], depth: int) -> None:
    options = node.get("options") or []
    if len(options) > MAX_OPTIONS:
        problems.append(f"{where}: {len(options)} options, at most {MAX_OPTIONS}")
    names = [o.get("name") for o in options]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"{where}: option name {name!r} is used twice")
    subcommands = [o for o in options if o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if subcommands and len(subcommands) != len(options):
        problems.append(f"{where}: subcommands cannot be mixed with plain options")
    seen_optional = False
    for option in options:
        path = f"{where} {option.get('name')}"
        _check_name(option.get("name"), path, problems)
        _check_description(option, path, problems)
        kind = option.get("type")
        if kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if kind == SUB_COMMAND_GROUP and depth > 0:
                problems.append(f"{path}: a subcommand group cannot sit inside another group")
            if kind == SUB_COMMAND_GROUP and any(o.get("type") != SUB_COMMAND for o in option.get("options") or []):
                problems.append(f"{path}: a subcommand group holds only subcommands")
            _check_options(option, path, problems, depth + 1)
            continue
        if option.get("required"):
            if seen_optional:
                problems.append(f"{path}: required options must come before optional ones")
        else:
            seen_optional = True
        _check_option(option, path, problems)


def validate_command(command: Mapping[str, Any]) -> list[str]:
    """Every limit one top-level command payload breaks, as sentences naming the option path."""
    where = "/" + str(command.get("name"))
    problems: list[str] = []
    _check_name(command.get("name"), where, problems)
    if command.get("type", 1) == 1:
        _check_description(command, where, problems)
    _check_options(command, where, problems, 0)
    chars = command_chars(command)
    if chars > MAX_COMMAND_CHARS:
        problems.append(f"{where}: {chars} characters in names, descriptions and choices, at most {MAX_COMMAND_CHARS}")
    return problems


def validate_payload(commands: Iterable[Mapping[str, Any]]) -> list[str]:
    """Problems in a full sync payload (a list of top-level commands); empty when Discord will accept it."""
    commands = list(commands)
    problems: list[str] = []
    if len(commands) > MAX_COMMANDS:
        problems.append(f"{len(commands)} commands, at most {MAX_COMMANDS}")
    names = [c.get("name") for c in commands]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"command name {name!r} is used twice")
    for command in commands:
        problems += validate_command(command)
    return problems


def payload_hash(commands: Iterable[Mapping[str, Any]]) -> str:
    """A stable fingerprint of a payload: the bot syncs only when it changes."""
    text = json.dumps(list(commands), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
