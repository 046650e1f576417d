"""Settings: a TOML file plus environment variables, validated once at start-up.

Where the file is: ``--config PATH``, else ``$VIDEOGEN_CONFIG``, else ``./videogen.toml``, else the
user config directory (``~/.config/videogen/config.toml`` on Linux). No file at all is fine: every
setting has a working default and keys can come from the environment. Environment variables win
over the file so a deployment can keep secrets out of it. A bad value stops start-up with one
message naming the file (or variable), the key and what was expected, never a secret's value.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .money import usd

APP = "videogen"
MAX_USD = Decimal("1000000")
"""A limit or price above a million dollars is a typo, not a policy."""

# (environment variable, setting path); secrets first so their names are easy to find.
ENV_OVERRIDES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("FAL_KEY", ("fal", "key")),
    ("FAL_ADMIN_KEY", ("fal", "admin_key")),
    ("WAVESPEED_API_KEY", ("wavespeed", "key")),
    ("DISCORD_TOKEN", ("discord", "token")),
    ("VIDEOGEN_WEB_SECRET", ("web", "secret")),
    ("VIDEOGEN_LLM_API_KEY", ("llm", "api_key")),
    ("VIDEOGEN_LLM_BASE_URL", ("llm", "base_url")),
    ("VIDEOGEN_LLM_MODEL", ("llm", "model")),
    ("VIDEOGEN_FAL_QUEUE_URL", ("fal", "queue_url")),
    ("VIDEOGEN_FAL_REST_URL", ("fal", "rest_url")),
    ("VIDEOGEN_FAL_API_URL", ("fal", "api_url")),
    ("WAVESPEED_WEBHOOK_SECRET", ("webhooks", "wavespeed_secret")),
    ("VIDEOGEN_PUBLIC_URL", ("webhooks", "public_url")),
    ("VIDEOGEN_WAVESPEED_BASE_URL", ("wavespeed", "base_url")),
    ("VIDEOGEN_DB", ("storage", "database")),
    ("VIDEOGEN_MEDIA_DIR", ("storage", "media_dir")),
)


def user_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the database and media live by default, following each platform's convention."""
    env = os.environ if env is None else env
    if sys.platform == "win32":
        return Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / APP


def user_config_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if sys.platform == "win32":
        return Path(env.get("APPDATA") or Path.home() / "AppData" / "Roaming") / APP / "config.toml"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP / "config.toml"
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP / "config.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http:// or https:// URL such as https://queue.fal.run")
    return value.rstrip("/")


MAX_REQUESTS_IN_FLIGHT = 128
"""The highest per-provider cap accepted: every kept connection adds to each request's CPU cost
(providers/http.py ``MAX_CONNECTIONS``), and 128 at ~300 ms a request is already ~400 requests a
second to one provider, more than its rate limits allow one account."""


def _requests_in_flight(provider: str) -> Any:
    return Field(default=8, description=(
        f"API requests to {provider} (submits, polls, results, cancels) this process has in flight at once; "
        "more wait their turn. File uploads have their own 4. Raise it when polls and submits wait with many "
        "jobs running: 8 over a ~100-300 ms link is ~30-80 requests a second"))


def _in_flight_range(value: int) -> int:
    """The range check with a message that says what the number does (a bare "greater than or equal
    to 1" would not tell an operator what the number is for)."""
    if not (1 <= value <= MAX_REQUESTS_IN_FLIGHT):
        raise ValueError(f"expected a whole number from 1 to {MAX_REQUESTS_IN_FLIGHT} (default 8): how many API "
                         "requests to this provider may be in flight at once")
    return value


class FalSettings(_Section):
    key: SecretStr | None = Field(default=None, description="fal API key (env FAL_KEY)")
    queue_url: str = Field(default="https://queue.fal.run", description="fal queue API base URL")
    rest_url: str = Field(default="https://rest.fal.ai", description="fal REST (storage) base URL")
    admin_key: SecretStr | None = Field(
        default=None, description="fal ADMIN-scope key for the billing API, used only by videogen reconcile "
                                  "(env FAL_ADMIN_KEY)")
    api_url: str = Field(default="https://api.fal.ai", description="fal platform API base URL (billing events)")
    max_requests_in_flight: int = _requests_in_flight("fal")

    _urls = field_validator("queue_url", "rest_url", "api_url")(_http_url)
    _in_flight = field_validator("max_requests_in_flight")(_in_flight_range)


class WaveSpeedSettings(_Section):
    key: SecretStr | None = Field(default=None, description="WaveSpeed API key (env WAVESPEED_API_KEY)")
    base_url: str = Field(default="https://api.wavespeed.ai", description="WaveSpeed API base URL")
    max_requests_in_flight: int = _requests_in_flight("WaveSpeed")

    _urls = field_validator("base_url")(_http_url)
    _in_flight = field_validator("max_requests_in_flight")(_in_flight_range)


DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(value: object) -> bool:
    """A PostgreSQL URL (the shared store) rather than a SQLite file path (the embedded default)."""
    return isinstance(value, str) and value.startswith(DATABASE_URL_SCHEMES)


def redact_database_url(url: str) -> str:
    """``url`` as messages may show it: the password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


class StorageSettings(_Section):
    database: Path | str = Field(default_factory=lambda: user_data_dir() / "videogen.db",
                                 description="a SQLite file, or a postgresql:// URL shared by several processes")
    media_dir: Path = Field(default_factory=lambda: user_data_dir() / "media")
    max_download_mb: int = Field(default=500, ge=1, le=10_000,
                                 description="largest output file kept, in MiB")
    download_deadline_seconds: float = Field(default=900, gt=0, le=86_400,
                                             description="the longest one output download may take in all")
    postgres_prepared_statements: bool = Field(
        default=True, description="PostgreSQL only: the server keeps the plan of each statement a connection repeats"
        " (less CPU per reservation). Turn off behind PgBouncer in transaction mode unless it is 1.21 or newer with"
        " max_prepared_statements set")
    postgres_synchronous_commit: bool = Field(
        default=True, description="PostgreSQL only: each commit waits until its WAL is on disk. false answers sooner"
        " (no disk flush per reservation or settle) but a crash of the database server or its machine can lose the"
        " last fraction of a second of committed holds, settles and jobs (never corrupts them; SQLite's WAL mode"
        " with synchronous=NORMAL, the embedded default, makes the same trade)")

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: object) -> Path | str:
        if is_database_url(value):
            return str(value)
        if isinstance(value, str) and "://" in value:
            raise ValueError("expected a file path (SQLite) or a postgresql:// URL")
        return Path(str(value)).expanduser()

    @field_validator("media_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


class LimitSettings(_Section):
    """Spend and rate limits; a missing value means no limit of that kind."""

    daily_usd: Decimal | None = Field(default=None, ge=0, le=MAX_USD)
    monthly_usd: Decimal | None = Field(default=None, ge=0, le=MAX_USD)
    concurrent_jobs: int | None = Field(default=None, ge=0, le=10_000)
    jobs_per_hour: int | None = Field(default=None, ge=0, le=1_000_000)
    warn_at: float | None = Field(default=None, gt=0, le=1, description="warn when this share of a limit is used")

    @property
    def daily_micros(self) -> int | None:
        return None if self.daily_usd is None else usd(self.daily_usd)

    @property
    def monthly_micros(self) -> int | None:
        return None if self.monthly_usd is None else usd(self.monthly_usd)


class QuotaSettings(_Section):
    timezone: str = Field(default="UTC", description="time zone of the daily and monthly windows")
    default: LimitSettings = Field(default_factory=lambda: LimitSettings(
        daily_usd=Decimal("5"), monthly_usd=Decimal("50"), concurrent_jobs=2, jobs_per_hour=20, warn_at=0.8))
    global_: LimitSettings = Field(default_factory=LimitSettings, alias="global")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True, defer_build=True)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone name such as 'UTC' or 'Europe/Paris'") from None
        return value


class AdminSettings(_Section):
    accounts: list[str] = Field(default=[], description="account names with admin rights")
    discord_user_ids: list[int] = Field(default=[])
    discord_role_ids: list[int] = Field(default=[])


class DiscordSettings(_Section):
    token: SecretStr | None = Field(default=None, description="bot token (env DISCORD_TOKEN)")
    guild_ids: list[int] = Field(default=[], description="sync commands to these guilds only")
    confirm_above_usd: Decimal = Field(default=Decimal("1.00"), ge=0, le=MAX_USD,
                                       description="runs priced above this show a Run/Cancel card first")
    confirm_seconds: int = Field(default=300, ge=10, le=3600, description="how long a price card can be run")
    allow_dms: bool = Field(default=False, description="accept commands in DMs (the user's limits and the global cap)")
    message_content: bool = Field(
        default=False, description="the privileged Message Content intent: every reply in a chat thread continues "
                                   "the conversation (off: only replies that mention the bot)")
    nsfw: Literal["spoiler", "withhold"] = Field(
        default="spoiler", description="outputs a provider flags as NSFW: posted as spoilers, or withheld outside "
                                       "age-restricted channels")
    banned_words: list[str] = Field(default=[], description="prompts containing any of these are refused")
    provider_switches: dict[str, bool] = Field(
        default={}, description="provider safety switches (enable_safety_checker, auto_fix): the "
                                          "operator's choice, never a user option; unset = the model's default")
    shard_count: int | None = Field(default=None, ge=1, le=10_000, description="total gateway shards")
    shard_ids: list[int] | None = Field(default=None, description="the shards this process runs (needs shard_count)")

    @property
    def confirm_above_micros(self) -> int:
        return usd(self.confirm_above_usd)

    @field_validator("banned_words")
    @classmethod
    def _words(cls, words: list[str]) -> list[str]:
        cleaned = [w.strip().lower() for w in words if w.strip()]
        return list(dict.fromkeys(cleaned))

    @field_validator("provider_switches")
    @classmethod
    def _switches(cls, switches: dict[str, bool]) -> dict[str, bool]:
        if not switches:
            return switches
        from .catalog import SAFETY_FIELDS  # only when set: a start that needs no catalog loads none

        unknown = sorted(set(switches) - SAFETY_FIELDS)
        if unknown:
            raise ValueError(f"unknown provider switch {', '.join(unknown)}; known: {', '.join(sorted(SAFETY_FIELDS))}")
        return switches

    @model_validator(mode="after")
    def _shards(self) -> "DiscordSettings":
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("shard_ids needs shard_count (the total number of shards across all processes)")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad or not self.shard_ids:
                raise ValueError(f"shard_ids must be a non-empty list of numbers from 0 to {self.shard_count - 1}")
        return self


class McpSettings(_Section):
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8765, ge=1, le=65535)
    tools: Literal["default", "compact"] = Field(
        default="default", description="default: one tool per model; compact: list/describe/generate")
    confirm_above_usd: Decimal | None = Field(
        default=None, ge=0, le=MAX_USD,
        description="ask clients that support elicitation to confirm a run priced above this; unset = never ask")
    stateless_http: bool = Field(
        default=False, description="no MCP session kept between HTTP requests, so any replica answers any request")


class WebSettings(_Section):
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8766, ge=1, le=65535)
    session_hours: float = Field(default=12, gt=0, le=720, description="how long a dashboard sign-in lasts")
    secret: SecretStr | None = Field(
        default=None, description="signs dashboard sessions (env VIDEOGEN_WEB_SECRET); unset: a new one per "
                                  "start, which signs everyone out on restart")


class LlmSettings(_Section):
    """The chat agent's language model: any OpenAI-compatible endpoint, its price, and the agent's bounds."""

    base_url: str | None = Field(default=None, description="OpenAI-compatible API base URL (default: OpenAI's)")
    model: str | None = Field(default=None, max_length=200, description="the model name the endpoint knows")
    api_key: SecretStr | None = Field(default=None, description="API key (env VIDEOGEN_LLM_API_KEY)")
    usd_per_mtok_input: Decimal = Field(default=Decimal("0"), ge=0, le=MAX_USD,
                                        description="USD per million prompt tokens, booked on the ledger")
    usd_per_mtok_output: Decimal = Field(default=Decimal("0"), ge=0, le=MAX_USD,
                                         description="USD per million completion tokens, booked on the ledger")
    confirm_above_usd: Decimal | None = Field(
        default=None, ge=0, le=MAX_USD, description="ask before a generation priced above this; unset = always ask")
    max_tool_calls: int = Field(default=12, ge=1, le=100, description="tool calls per turn at most")
    max_generations: int = Field(default=1, ge=0, le=20, description="generations per turn at most")
    max_tokens: int = Field(default=1024, ge=16, le=100_000, description="completion tokens per model call")
    history_messages: int = Field(default=40, ge=2, le=1000, description="stored messages replayed to the model")
    timeout_seconds: float = Field(default=60.0, gt=0, le=600, description="one model call's time limit")
    max_retries: int = Field(default=2, ge=0, le=10, description="retries of a failed model call (the SDK's)")
    stream: bool = Field(default=True, description="stream answers (turn off for a server without streaming)")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @property
    def confirm_above_micros(self) -> int | None:
        return None if self.confirm_above_usd is None else usd(self.confirm_above_usd)


class PollingSettings(_Section):
    initial_seconds: float = Field(default=1.0, gt=0, le=60)
    max_seconds: float = Field(default=10.0, gt=0, le=600)
    factor: float = Field(default=1.5, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> "PollingSettings":
        if self.max_seconds < self.initial_seconds:
            raise ValueError("max_seconds must be at least initial_seconds")
        return self


class WebhookSettings(_Section):
    """Provider callbacks: with ``public_url`` set, submits ask fal and WaveSpeed to call
    ``{public_url}/webhooks/{provider}`` when a request ends; the callback only wakes the job's
    tracker, which then polls as always. Unset (the default): nothing changes."""

    public_url: str | None = Field(
        default=None, description="https base URL where this server's /webhooks/{provider} is reachable from the "
                                  "internet (a tunnel such as cloudflared or ngrok for a home server)")
    safety_poll_seconds: float = Field(
        default=60.0, description="while a callback is awaited, poll only this often (1 to 3600 s): the safety "
                                  "net that finishes a job whose callback was lost")
    fal_jwks_url: str = Field(default="https://rest.fal.ai/.well-known/jwks.json",
                              description="fal's published webhook keys (JWKS)")
    fal_user_id: str | None = Field(default=None, description="if set, fal callbacks for another user are refused")
    wavespeed_secret: SecretStr | None = Field(
        default=None, description="WaveSpeed webhook secret (whsec_…, env WAVESPEED_WEBHOOK_SECRET); unset: "
                                  "fetched with the API key")
    max_skew_seconds: int = Field(default=300, ge=30, le=3600,
                                  description="callbacks stamped further than this from now are refused")
    listen_host: str = Field(default="127.0.0.1", description="where videogen discord serves /webhooks/{provider}")
    listen_port: int = Field(default=8790, ge=1, le=65535,
                             description="its port (videogen web and mcp --http serve the route on their own port)")

    _jwks = field_validator("fal_jwks_url")(_http_url)

    @field_validator("safety_poll_seconds")
    @classmethod
    def _safety_poll(cls, value: float) -> float:
        if not (1 <= value <= 3600):  # also refuses nan and inf
            raise ValueError("expected seconds from 1 to 3600 (default 60): how often a job awaiting its callback "
                             "is still polled, so that a lost callback is noticed")
        return value

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = _http_url(value.strip())
        host = urlsplit(url).hostname or ""
        if url.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("providers call only https URLs; use https:// (plain http only for 127.0.0.1 tests)")
        return url


class FailoverSettings(_Section):
    """Sending a job to the same model on another provider when the chosen one refuses it unsent."""

    enabled: bool = Field(default=True, description="fail over to an equivalent endpoint (catalog EQUIVALENTS)")
    max_price_increase: Decimal = Field(
        default=Decimal("0"), ge=0, le=1000,
        description="percent the equivalent may cost above the quote the user accepted (0: never more)")
    disabled_tools: list[str] = Field(default_factory=list,
                                      description="tools out of failover: never moved, and never moved to")

    @field_validator("disabled_tools")
    @classmethod
    def _known_tools(cls, tools: list[str]) -> list[str]:
        if not tools:
            return tools
        from .catalog import CATALOG  # only when set: a start that needs no catalog loads none

        unknown = [t for t in tools if t not in CATALOG]
        if unknown:
            raise ValueError(f"unknown tool {', '.join(unknown)}; tools are {', '.join(CATALOG)}")
        return tools

    def allows(self, tool: str) -> bool:
        return self.enabled and tool not in self.disabled_tools

    def price_ceiling(self, quoted_micros: int) -> int:
        """The most an equivalent may cost in place of a run quoted at ``quoted_micros``."""
        return int(quoted_micros * (100 + self.max_price_increase) // 100)


class Settings(_Section):
    fal: FalSettings = Field(default_factory=FalSettings)
    wavespeed: WaveSpeedSettings = Field(default_factory=WaveSpeedSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    admins: AdminSettings = Field(default_factory=AdminSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    polling: PollingSettings = Field(default_factory=PollingSettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    prices: dict[str, dict[str, Decimal]] = Field(
        default={}, description="[prices.<tool>] <rate> = USD overrides the catalog's rate")

    _origin: "ConfigOrigin" = PrivateAttr(default=None)  # type: ignore[assignment]

    @field_validator("prices")
    @classmethod
    def _known_rates(cls, prices: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
        if not prices:
            return prices
        from .catalog import CATALOG  # only when set: a start that needs no catalog loads none

        for tool, rates in prices.items():
            if tool not in CATALOG:
                raise ValueError(f"unknown tool '{tool}'; tools are {', '.join(CATALOG)}")
            known = CATALOG[tool].rates
            for rate, value in rates.items():
                if rate not in known:
                    raise ValueError(f"{tool} has no rate '{rate}'; its rates are {', '.join(known)}")
                if not (0 <= value <= MAX_USD):
                    raise ValueError(f"{tool}.{rate} must be a dollar amount from 0 to {MAX_USD}")
        return prices

    def price_overrides(self, tool: str) -> dict[str, int]:
        """The operator's rates for a tool, in micro-dollars, to pass to ``ModelSpec.price``."""
        return {rate: usd(value) for rate, value in self.prices.get(tool, {}).items()}

    @property
    def origin(self) -> "ConfigOrigin":
        return self._origin or ConfigOrigin(None, "defaults only", (), {})


@dataclass(frozen=True)
class ConfigOrigin:
    """Where the settings came from, for ``videogen config check`` and error messages."""

    file: Path | None
    how_found: str
    searched: tuple[Path, ...]
    env_keys: Mapping[tuple[str, ...], str]

    def source_of(self, path: tuple[str, ...], in_file: bool) -> str:
        if path in self.env_keys:
            return f"env {self.env_keys[path]}"
        if in_file and self.file is not None:
            return f"file {self.file}"
        return "default"


def find_config_file(explicit: str | os.PathLike[str] | None, env: Mapping[str, str],
                     cwd: Path | None = None) -> tuple[Path | None, str, tuple[Path, ...]]:
    """The file to read, how it was chosen, and where else we looked (for ``config check``)."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"Config file {path} (given with --config) does not exist.")
        return path, "--config", (path,)
    if env.get("VIDEOGEN_CONFIG"):
        path = Path(env["VIDEOGEN_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"Config file {path} (from VIDEOGEN_CONFIG) does not exist.")
        return path, "VIDEOGEN_CONFIG", (path,)
    candidates = ((cwd or Path.cwd()) / "videogen.toml", user_config_file(env))
    for path in candidates:
        if path.is_file():
            how = "./videogen.toml" if path == candidates[0] else "user config directory"
            return path, how, candidates
    return None, "no file found; using defaults", candidates


def load_settings(config: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> Settings:
    """Find, read, merge with the environment and validate: the only way settings are made."""
    env = dict(os.environ if env is None else env)
    path, how, searched = find_config_file(config, env, cwd)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Config file {path} is not valid TOML: {exc}.") from None
        except OSError as exc:
            raise ConfigError(f"Config file {path} cannot be read: {exc.strerror}.") from None
    env_keys: dict[tuple[str, ...], str] = {}
    for var, key_path in ENV_OVERRIDES:
        if env.get(var):
            section = data.setdefault(key_path[0], {})
            if not isinstance(section, dict):
                continue  # a malformed section is reported by validation below
            section[key_path[1]] = env[var]
            env_keys[key_path] = var
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path, env_keys)) from None
    settings._origin = ConfigOrigin(path, how, searched, env_keys)
    return settings


_FRIENDLY = {
    "decimal_parsing": "expected a dollar amount, a number such as 5 or 2.50",
    "decimal_type": "expected a dollar amount, a number such as 5 or 2.50",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list, such as [1, 2]",
    "extra_forbidden": "unknown setting (config.example.toml lists every setting)",
}
_SECRET_KEYS = {"key", "token", "secret", "api_key", "admin_key", "wavespeed_secret"}


def _explain(exc: ValidationError, path: Path | None, env_keys: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join("global" if p == "global_" else p for p in loc)
        where = f"environment variable {env_keys[loc]}" if loc in env_keys else (
            f"config file {path}" if path else "defaults")
        msg = _FRIENDLY.get(err["type"], err["msg"].removeprefix("Value error, "))
        given = "" if (set(loc) & _SECRET_KEYS or err["type"] == "extra_forbidden" or isinstance(err.get("input"), dict)) \
            else f" (got {err.get('input')!r})"
        lines.append(f"{where}: {key}: {msg}{given}")
    if len(lines) == 1:
        return "Invalid configuration — " + lines[0]
    return "Invalid configuration:\n  " + "\n  ".join(lines)


def describe(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(key, shown value, source) for every setting; secrets are shown only as set or unset."""
    origin = settings.origin
    file_data: dict[str, Any] = {}
    if origin.file is not None:
        file_data = tomllib.loads(origin.file.read_text(encoding="utf-8"))

    def walk(model: BaseModel, prefix: tuple[str, ...], raw: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
        for name, info in type(model).model_fields.items():
            key = info.alias or name
            value = getattr(model, name)
            path = (*prefix, key)
            raw_value = raw.get(key) if isinstance(raw, Mapping) else None
            if isinstance(value, BaseModel):
                yield from walk(value, path, raw_value or {})
                continue
            if isinstance(value, SecretStr) or (value is None and info.annotation is not None
                                                and "SecretStr" in str(info.annotation)):
                shown = "set (hidden)" if value is not None else "not set"
            elif value is None:
                shown = "no limit" if prefix and prefix[0] == "quotas" else "not set"
            elif isinstance(value, dict):
                shown = ", ".join(f"{t}: {r}" for t, r in value.items()) or "none"
            else:
                shown = str(value)
            yield ".".join(path), shown, origin.source_of(path, raw_value is not None)

    yield from walk(settings, (), file_data)
