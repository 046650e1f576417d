"""The videogen command: tables and JSON on stdout, clear errors and non-zero exits on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from agent_tools.catalog import CATALOG
from agent_tools.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits for --help and usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_all_fifteen(capsys, clean_env):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for spec in CATALOG.values():
        assert spec.tool in out
    assert "$3.20" in out and "wavespeed" in out


def test_models_json(capsys, clean_env):
    code, out, _ = run(capsys, "models", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["models"]) == 15
    veo = next(m for m in data["models"] if m["tool"] == "veo3_fast")
    assert veo["default_cost_micros"] == 3_200_000 and veo["default_cost_usd"] == 3.2


def test_models_apply_price_overrides(capsys, clean_env):
    (clean_env / "videogen.toml").write_text("[prices.veo3_fast]\nper_second_audio = 0.15\n")
    _, out, _ = run(capsys, "models", "--json")
    veo = next(m for m in json.loads(out)["models"] if m["tool"] == "veo3_fast")
    assert veo["default_cost_micros"] == 1_200_000


@pytest.mark.parametrize("fmt", ["mcp", "openai", "anthropic"])
def test_schema_prints_valid_tools(capsys, fmt):
    code, out, _ = run(capsys, "schema", "--format", fmt)
    tools = json.loads(out)
    assert code == 0 and len(tools) == 15
    for tool in tools:
        schema = {"mcp": lambda t: t["inputSchema"], "openai": lambda t: t["function"]["parameters"],
                  "anthropic": lambda t: t["input_schema"]}[fmt](tool)
        Draft202012Validator.check_schema(schema)


def test_schema_for_one_tool(capsys):
    code, out, _ = run(capsys, "schema", "pika_text_to_video", "--format", "openai")
    assert code == 0 and json.loads(out)["function"]["name"] == "pika_text_to_video"


def test_estimate_with_generated_options(capsys, clean_env):
    code, out, _ = run(capsys, "estimate", "pika_text_to_video", "--duration", "10", "--resolution", "1080p")
    assert code == 0
    assert "$0.90" in out and "10 s / 5 s × $0.45 (1080p)" in out and "prompt" in out


def test_estimate_json(capsys, clean_env):
    code, out, _ = run(capsys, "estimate", "veo3_fast", "--no-generate-audio", "--duration", "4s",
                       "--prompt", "a cat", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["tool"] == "veo3_fast" and data["cost_micros"] == 1_000_000 and data["cost_usd"] == 1.0
    assert data["params"]["generate_audio"] is False and data["params"]["resolution"] == "720p"
    assert data["params"]["prompt"] == "a cat"


def test_estimate_args_json_and_union_values(capsys, clean_env):
    code, out, _ = run(capsys, "estimate", "hunyuan_image_v3", "--args-json",
                       '{"image_size": {"width": 1000, "height": 1000}, "num_images": 3}', "--num-images", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["params"]["num_images"] == 2 and data["cost_micros"] == 200_000


def test_estimate_string_enums_stay_strings(capsys, clean_env):
    code, out, _ = run(capsys, "estimate", "hailuo_02_text_to_video", "--duration", "10", "--json")
    assert code == 0 and json.loads(out)["params"]["duration"] == "10"


def test_estimate_help_lists_the_models_parameters(capsys):
    code, out, _ = run(capsys, "estimate", "sora_2_pro_text_to_video", "--help")
    assert code == 0
    for option in ("--prompt", "--resolution", "--aspect-ratio", "--duration", "--api-key", "--args-json"):
        assert option in out
    assert "one of 4, 8, 12 (default 4)" in " ".join(out.split()).lower()


def test_estimate_names_every_problem(capsys, clean_env):
    code, _, err = run(capsys, "estimate", "pika_text_to_video", "--duration", "7", "--resolution", "4k", "--colour", "red")
    assert code == 2
    assert "--colour: not an option" in err
    assert "duration: 7 is not allowed; expected one of 5, 10" in err
    assert 'resolution: "4k" is not allowed; expected one of "720p", "1080p"' in err


def test_estimate_out_of_range(capsys, clean_env):
    code, _, err = run(capsys, "estimate", "hunyuan_image_v3", "--num-images", "9")
    assert code == 2 and "num_images: 9 is not allowed; expected an integer from 1 to 4" in err


def test_unknown_tool_suggests(capsys, clean_env):
    code, _, err = run(capsys, "estimate", "pika_txt_to_video")
    assert code == 2 and "Did you mean 'pika_text_to_video'" in err
    code, _, err = run(capsys, "schema", "veo3fast")
    assert code == 2 and "veo3_fast" in err


def test_bad_args_json(capsys, clean_env):
    code, _, err = run(capsys, "estimate", "veo3_fast", "--args-json", "{nope")
    assert code == 2 and "--args-json is not valid JSON" in err


def test_config_check_masks_secrets(capsys, clean_env, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "fal-very-secret")
    code, out, _ = run(capsys, "config", "check")
    assert code == 0
    assert "fal-very-secret" not in out
    assert "fal.key" in out and "set (hidden)" in out and "env FAL_KEY" in out
    assert "config file: none" in out and "no API key for wavespeed" in out


def test_config_error_exits_nonzero(capsys, clean_env):
    (clean_env / "videogen.toml").write_text("[mcp]\nport = 70000\n")
    code, _, err = run(capsys, "config", "check")
    assert code == 2 and "mcp.port" in err and "videogen.toml" in err


@pytest.mark.parametrize("argv", [["--help"], ["models", "--help"], ["schema", "--help"],
                                  ["estimate", "--help"], ["config", "--help"], ["config", "check", "--help"]])
def test_every_command_has_help(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "usage:" in out


def test_console_script_is_installed(clean_env):
    exe = Path(sys.executable).parent / "videogen"
    result = subprocess.run([str(exe), "schema", "--format", "openai"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"}, check=False)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 15
