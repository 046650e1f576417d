"""Settings come from a file found in a fixed order, the environment wins, and errors are precise."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from agent_tools.config import describe, load_settings
from agent_tools.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_no_file_at_all_works_on_defaults(clean_env):
    settings = load_settings()
    assert settings.origin.file is None
    assert settings.fal.queue_url == "https://queue.fal.run"
    assert settings.wavespeed.base_url == "https://api.wavespeed.ai"
    assert settings.storage.database == clean_env / "xdg-data" / "videogen" / "videogen.db"
    assert settings.storage.media_dir == clean_env / "xdg-data" / "videogen" / "media"
    assert settings.mcp.host == "127.0.0.1" and settings.mcp.port == 8765
    assert settings.quotas.default.daily_micros == 5_000_000
    assert settings.fal.key is None


def test_search_order(clean_env, monkeypatch):
    user = write(clean_env / "xdg-config" / "videogen" / "config.toml", "[mcp]\nport = 1001\n")
    assert load_settings().mcp.port == 1001 and load_settings().origin.file == user
    local = write(clean_env / "videogen.toml", "[mcp]\nport = 1002\n")
    assert load_settings().origin.file == local and load_settings().mcp.port == 1002
    env_file = write(clean_env / "env.toml", "[mcp]\nport = 1003\n")
    monkeypatch.setenv("VIDEOGEN_CONFIG", str(env_file))
    assert load_settings().mcp.port == 1003
    explicit = write(clean_env / "explicit.toml", "[mcp]\nport = 1004\n")
    settings = load_settings(explicit)
    assert settings.mcp.port == 1004 and settings.origin.how_found == "--config"


def test_missing_explicit_file_is_an_error(clean_env):
    with pytest.raises(ConfigError, match="nope.toml.*does not exist"):
        load_settings(clean_env / "nope.toml")


def test_environment_overrides_the_file(clean_env, monkeypatch):
    path = write(clean_env / "videogen.toml", '[fal]\nkey = "file-key"\nqueue_url = "https://proxy.example/q"\n')
    monkeypatch.setenv("FAL_KEY", "env-key")
    monkeypatch.setenv("VIDEOGEN_WAVESPEED_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("VIDEOGEN_DB", str(clean_env / "x.db"))
    settings = load_settings()
    assert settings.fal.key.get_secret_value() == "env-key"
    assert settings.fal.queue_url == "https://proxy.example/q"
    assert settings.wavespeed.base_url == "http://127.0.0.1:9999"
    assert settings.storage.database == clean_env / "x.db"
    sources = {key: source for key, _, source in describe(settings)}
    assert sources["fal.key"] == "env FAL_KEY"
    assert sources["fal.queue_url"] == f"file {path}"
    assert sources["mcp.port"] == "default"


def test_secrets_never_printed(clean_env, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "super-secret-fal")
    monkeypatch.setenv("DISCORD_TOKEN", "super-secret-discord")
    settings = load_settings()
    text = repr(settings) + str(settings) + repr(list(describe(settings)))
    assert "super-secret" not in text
    shown = {key: value for key, value, _ in describe(settings)}
    assert shown["fal.key"] == "set (hidden)" and shown["wavespeed.key"] == "not set"


def test_bad_value_names_file_key_and_expectation(clean_env):
    path = write(clean_env / "videogen.toml", '[quotas.default]\ndaily_usd = "lots"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert str(path) in message and "quotas.default.daily_usd" in message and "number" in message


def test_negative_and_absurd_limits_are_refused(clean_env):
    write(clean_env / "videogen.toml", "[quotas.default]\nmonthly_usd = -1\n[quotas.global]\ndaily_usd = 1e12\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "quotas.default.monthly_usd" in message and "greater than or equal to 0" in message
    assert "quotas.global.daily_usd" in message


@pytest.mark.parametrize("value", ["0", "3601", "nan", '"soon"'])
def test_safety_poll_outside_its_range_is_refused(clean_env, value):
    write(clean_env / "videogen.toml", f"[webhooks]\nsafety_poll_seconds = {value}\n")
    with pytest.raises(ConfigError, match=r"webhooks\.safety_poll_seconds: expected (seconds from 1 to 3600|a number)"):
        load_settings()


def test_safety_poll_is_configurable(clean_env):
    assert load_settings().webhooks.safety_poll_seconds == 60
    write(clean_env / "videogen.toml", "[webhooks]\nsafety_poll_seconds = 300\n")
    assert load_settings().webhooks.safety_poll_seconds == 300


@pytest.mark.parametrize("provider", ["fal", "wavespeed"])
@pytest.mark.parametrize("value", ["0", "-3", "129", "2.5", '"many"'])
def test_requests_in_flight_outside_its_range_is_refused(clean_env, provider, value):
    """0 would let no request to the provider ever start; the message says what the number is for."""
    write(clean_env / "videogen.toml", f"[{provider}]\nmax_requests_in_flight = {value}\n")
    with pytest.raises(ConfigError, match=rf"{provider}\.max_requests_in_flight: expected a whole number"
                                          r"( from 1 to 128 \(default 8\): how many API requests)?"):
        load_settings()


def test_requests_in_flight_is_configurable_per_provider(clean_env):
    settings = load_settings()
    assert settings.fal.max_requests_in_flight == 8 and settings.wavespeed.max_requests_in_flight == 8
    write(clean_env / "videogen.toml", "[fal]\nmax_requests_in_flight = 32\n")
    settings = load_settings()
    assert settings.fal.max_requests_in_flight == 32 and settings.wavespeed.max_requests_in_flight == 8


def test_unknown_setting_is_named(clean_env):
    write(clean_env / "videogen.toml", '[fal]\nkee = "x"\n')
    with pytest.raises(ConfigError, match=r"fal\.kee: unknown setting"):
        load_settings()


def test_invalid_toml_names_the_file(clean_env):
    path = write(clean_env / "videogen.toml", "[fal\nkey=")
    with pytest.raises(ConfigError, match=f"{path}.*not valid TOML"):
        load_settings()


def test_bad_env_value_names_the_variable(clean_env, monkeypatch):
    monkeypatch.setenv("VIDEOGEN_FAL_QUEUE_URL", "queue.fal.run")
    with pytest.raises(ConfigError, match="environment variable VIDEOGEN_FAL_QUEUE_URL: fal.queue_url"):
        load_settings()


def test_price_overrides(clean_env):
    write(clean_env / "videogen.toml", "[prices.veo3_fast]\nper_second = 0.10\nper_second_audio = 0.15\n")
    settings = load_settings()
    assert settings.prices["veo3_fast"]["per_second"] == Decimal("0.10")
    assert settings.price_overrides("veo3_fast") == {"per_second": 100_000, "per_second_audio": 150_000}
    assert settings.price_overrides("pika_text_to_video") == {}


@pytest.mark.parametrize(("toml", "expected"), [
    ("[prices.veo4]\nper_second = 1", "unknown tool 'veo4'"),
    ("[prices.veo3_fast]\nper_minute = 1", "veo3_fast has no rate 'per_minute'; its rates are per_second, per_second_audio"),
    ("[prices.veo3_fast]\nper_second = -2", "from 0 to"),
])
def test_bad_price_overrides(clean_env, toml, expected):
    write(clean_env / "videogen.toml", toml)
    with pytest.raises(ConfigError, match=expected):
        load_settings()


def test_time_zone_and_polling_are_checked(clean_env):
    write(clean_env / "videogen.toml", '[quotas]\ntimezone = "Mars/Olympus"\n[polling]\ninitial_seconds = 5\nmax_seconds = 1\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "IANA time zone" in str(info.value) and "max_seconds must be at least initial_seconds" in str(info.value)


def test_example_config_is_valid_and_documents_every_setting(clean_env):
    example = Path(__file__).parent.parent / "config.example.toml"
    settings = load_settings(example)
    text = example.read_text()
    for key, _, _ in describe(settings):
        leaf = key.rsplit(".", 1)[-1]
        assert leaf in text, f"config.example.toml does not document {key}"
