"""The Toolkit: the one entry point every surface (CLI, MCP server, Discord bot) calls.

A surface parses its protocol, calls a Toolkit method and renders what comes back; it never talks
to providers, the ledger or SQLite itself. ``generate`` is the whole path of a generation:
validate → check inputs → price → reserve the cost against every quota (and record the job, in
the same transaction) → upload local inputs → submit → track → keep the outputs → settle the
actual cost, or release it if the job failed. A ``UserError`` from any step before the submit
means nothing was submitted and nothing is owed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncio
import uuid
from collections import OrderedDict
from datetime import date
from pathlib import Path

import sqlite3

from .catalog import CATALOG, EQUIVALENTS, ModelInput, ModelSpec, NotEquivalent, OutputKind, Quote, get, translate
from .config import Settings
from .db import Database, Transaction
from .errors import UserError
from .followups import ANIMATE_TOOL, animate_arguments, reroll_arguments
from .jobs import EventCallback, Job, JobEngine, JobEventRow, JobNotFound, JobState, Reroute
from .ledger import (AuditEntry, BooksCheck, Hold, Ledger, Limits, LimitStatus, Requester, Reservation, SpendRow,
                     TokenInfo)
from .media import MediaError, MediaStore, check_inputs, prepare_inputs
from .providers.base import ProviderAdapter
from .money import format_usd
from .providers.errors import ProviderError
from .store import open_database

if TYPE_CHECKING:
    from .reconcile import Report as ReconcileReport
    from .webhooks.receiver import WebhookReceiver

LOCAL_ACCOUNT = "local"


@dataclass(frozen=True)
class Account:
    """Who is asking, with the context their limits depend on (a Discord guild and roles).

    The CLI and the stdio MCP server act as the local account; build others with
    ``Toolkit.account_for_token`` / ``account_for_discord`` so admin rights come from config.
    """

    name: str
    is_admin: bool = False
    guild_id: str | None = None
    role_ids: tuple[str, ...] = ()

    @property
    def requester(self) -> Requester:
        return Requester(self.name, self.guild_id, self.role_ids)


class BoundedDict(OrderedDict[str, tuple[str, ...]]):
    """A dict that forgets its oldest entries past ``size``, so a long-running server can't grow it forever."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: str, value: tuple[str, ...]) -> None:
        super().__setitem__(key, value)
        while len(self) > self.size:
            self.popitem(last=False)


class LedgerSettlement:
    """Moves a job's hold along with the job, inside the job's own transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def on_submitted(self, conn: sqlite3.Connection, job: Job) -> None:
        if job.hold_id:
            self.ledger.mark_submitted_in(conn, job.hold_id, job.id)

    def on_finished(self, conn: sqlite3.Connection, job: Job) -> None:
        if not job.hold_id:
            return
        if job.state is JobState.SUCCEEDED:
            actual = job.actual_micros if job.actual_micros is not None else job.estimate_micros
            self.ledger.settle_in(conn, job.hold_id, actual, detail=f"job {job.id} succeeded")
        else:
            self.ledger.release_in(conn, job.hold_id, detail=f"job {job.id} {job.state.value}")


@dataclass(frozen=True)
class Estimate:
    spec: ModelSpec
    params: ModelInput
    quote: Quote


def build_adapter(settings: Settings, provider: str) -> ProviderAdapter:
    """The adapter for one provider (its key must be configured)."""
    if provider == "fal":
        from .providers.fal import FalAdapter

        assert settings.fal.key is not None
        return FalAdapter(settings.fal.key, queue_url=settings.fal.queue_url, rest_url=settings.fal.rest_url,
                          max_requests_in_flight=settings.fal.max_requests_in_flight)
    from .providers.wavespeed import WaveSpeedAdapter

    assert settings.wavespeed.key is not None
    return WaveSpeedAdapter(settings.wavespeed.key, base_url=settings.wavespeed.base_url,
                            max_requests_in_flight=settings.wavespeed.max_requests_in_flight)


class ProviderAdapters(MutableMapping[str, ProviderAdapter]):
    """An adapter for each provider that has a key configured, each built on first use: a server
    that has not called a provider yet has not imported httpx or built an HTTP client for it.
    It is a mapping like the plain dict it replaces (tests and callers may add or remove one)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._names = [name for name, section in (("fal", settings.fal), ("wavespeed", settings.wavespeed))
                       if section.key is not None]
        self._built: dict[str, ProviderAdapter] = {}
        self._removed: list[ProviderAdapter] = []  # built, then taken out: still to be closed

    def __getitem__(self, name: str) -> ProviderAdapter:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = build_adapter(self._settings, name)
        return self._built[name]

    def __setitem__(self, name: str, adapter: ProviderAdapter) -> None:
        if name in self._built and self._built[name] is not adapter:
            self._removed.append(self._built[name])
        if name not in self._names:
            self._names.append(name)
        self._built[name] = adapter

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        if name in self._built:
            self._removed.append(self._built.pop(name))

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def built(self) -> list[ProviderAdapter]:
        """The adapters made so far (the ones there is something to close)."""
        return [*self._built.values(), *self._removed]


MISSING_KEY = {
    "fal": "No fal API key is configured: set FAL_KEY (or [fal] key in the config file), or try it free with --simulate.",
    "wavespeed": ("No WaveSpeed API key is configured: set WAVESPEED_API_KEY (or [wavespeed] key in the config file), "
                  "or try it free with --simulate."),
}


class Toolkit:
    def __init__(self, settings: Settings, db: Database, engine: JobEngine, media: MediaStore,
                 adapters: Mapping[str, ProviderAdapter], ledger: Ledger) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        self.media = media
        self.adapters = adapters
        self.ledger = ledger
        self.missing_key_hints: dict[str, str] = {}
        """Per provider, what to say instead of ``MISSING_KEY`` when its key is unusable (e.g. the
        MCP command names the placeholder to replace in claude_desktop_config.json)."""
        self._webhooks: WebhookReceiver | None = None
        self._wavespeed_secret: str | None = None
        self.warnings: BoundedDict = BoundedDict(1000)
        """Budget warnings (e.g. "80 % of today's budget used") from recent jobs' reservations;
        a surface reads (and may pop) them right after ``generate``; old entries fall off."""

    @classmethod
    async def open(cls, settings: Settings, *, adapters: Mapping[str, ProviderAdapter] | None = None,
                   resume: bool = True, **engine_options: Any) -> "Toolkit":
        """Open the database, build adapters and the engine, and resume unfinished jobs."""
        db = await open_database(settings.storage.database, settings.storage)
        adapters = dict(adapters) if adapters is not None else ProviderAdapters(settings)
        media = MediaStore(settings.storage.media_dir, max_bytes=settings.storage.max_download_mb * 2**20,
                           deadline_seconds=settings.storage.download_deadline_seconds,
                           trusted_urls=(settings.fal.queue_url, settings.fal.rest_url, settings.wavespeed.base_url))
        ledger = Ledger(db, settings, **({"clock": engine_options["clock"]} if "clock" in engine_options else {}))
        engine = JobEngine(db, adapters, media, polling=settings.polling, settlement=LedgerSettlement(ledger),
                           webhook_base=settings.webhooks.public_url,
                           safety_poll_seconds=settings.webhooks.safety_poll_seconds, **engine_options)
        toolkit = cls(settings, db, engine, media, adapters, ledger)
        await ledger.ensure_account(LOCAL_ACCOUNT)
        await ledger.ensure_totals()  # an older database gets its running totals here, once
        if resume:
            await toolkit.resume()
        return toolkit

    @property
    def webhooks(self) -> "WebhookReceiver":
        """The provider-callback receiver every HTTP surface mounts at ``/webhooks/{provider}``."""
        if self._webhooks is None:
            from .webhooks.receiver import WebhookReceiver
            from .webhooks.verify import JwksCache

            self._webhooks = WebhookReceiver(self.settings.webhooks, self.db, self.engine,
                                             jwks=JwksCache(self._fal_jwks), wavespeed_secret=self._webhook_secret)
        return self._webhooks

    async def _fal_jwks(self) -> list[dict[str, Any]]:
        """fal's published webhook keys (``[webhooks] fal_jwks_url``)."""
        import httpx

        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(self.settings.webhooks.fal_jwks_url)
        keys = response.json().get("keys") if response.is_success else None
        return [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []

    async def _webhook_secret(self) -> str | None:
        """WaveSpeed's webhook secret: configured, or fetched once with the API key."""
        configured = self.settings.webhooks.wavespeed_secret
        if configured is not None:
            return configured.get_secret_value()
        if self._wavespeed_secret is None and self.settings.wavespeed.key is not None:
            import httpx

            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(
                    f"{self.settings.wavespeed.base_url}/api/v3/webhook/secret",
                    headers={"Authorization": f"Bearer {self.settings.wavespeed.key.get_secret_value()}"})
            data = response.json().get("data") if response.is_success else None
            secret = data.get("secret") if isinstance(data, dict) else None
            self._wavespeed_secret = secret if isinstance(secret, str) and secret else None
        return self._wavespeed_secret

    async def resume(self) -> list[Job]:
        return await self.engine.resume()

    async def close(self) -> None:
        await self.engine.aclose()
        await self.media.aclose()
        adapters = self.adapters.built() if isinstance(self.adapters, ProviderAdapters) else self.adapters.values()
        for adapter in adapters:
            await adapter.aclose()
        await self.db.close()

    async def __aenter__(self) -> "Toolkit":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- catalog ----------------------------------------------------------------------------

    def list_tools(self) -> list[ModelSpec]:
        return list(CATALOG.values())

    def estimate(self, tool: str, arguments: Mapping[str, Any]) -> Estimate:
        spec = get(tool)
        params = spec.validate(arguments)
        return Estimate(spec, params, spec.price(params, self.settings.price_overrides(spec.tool)))

    def equivalent(self, spec: ModelSpec, params: ModelInput) -> Estimate | str | None:
        """The same request on another provider that failover may use (same model, not opted out, a
        key configured, the choices all mappable, the price within ``[failover] max_price_increase``);
        else why not (a sentence), or None when failover is off for this tool or it has no equivalent.
        A tool in ``disabled_tools`` is out both ways: its jobs stay, and no job moves to it."""
        failover = self.settings.failover
        pairs = EQUIVALENTS.get(spec.tool, ())
        if not pairs or not failover.allows(spec.tool):
            return None
        ceiling = failover.price_ceiling(spec.price(params, self.settings.price_overrides(spec.tool)).micros)
        reasons = []
        for pair in pairs:
            target = CATALOG[pair.target]
            if not failover.allows(target.tool):
                reasons.append(f"{target.tool} is opted out of failover ([failover] disabled_tools)")
                continue
            if target.provider.value not in self.adapters:
                reasons.append(f"no {target.provider.value} key is configured for {target.tool}")
                continue
            try:
                mapped = translate(pair, target, params)
            except NotEquivalent as exc:
                reasons.append(f"{target.tool} cannot run it: {exc}")
                continue
            quote = target.price(mapped, self.settings.price_overrides(target.tool))
            if quote.micros > ceiling:
                reasons.append(f"{target.tool} costs {quote.usd}, above the {format_usd(ceiling)} allowed "
                               f"([failover] max_price_increase = {failover.max_price_increase} %)")
                continue
            return Estimate(target, mapped, quote)
        return "; ".join(reasons)

    def _route(self, estimate: Estimate) -> tuple[Estimate, dict[str, Any] | None]:
        """The estimate to run, moved to an equivalent provider when the chosen one has no key
        (with the failover record for the job), or ``UserError`` naming the key to set."""
        provider = estimate.spec.provider.value
        if provider in self.adapters:
            return estimate, None
        other = self.equivalent(estimate.spec, estimate.params)
        if not isinstance(other, Estimate):
            missing = self.missing_key_hints.get(provider) or MISSING_KEY[provider]
            raise UserError(missing + (f" It cannot fail over: {other}." if other else ""))
        record = {"from_tool": estimate.spec.tool, "from_provider": provider,
                  "from_endpoint_id": estimate.spec.endpoint_id, "reason": f"no {provider} key is configured"}
        return other, record

    async def preflight(self, account: Account, tool: str, arguments: Mapping[str, Any], *,
                        allow_local_files: bool = True) -> Estimate:
        """Everything ``generate`` would refuse before paying, checked without writing anything:
        the arguments, the inputs, a provider key, and every quota (read-only). A surface that must
        answer privately when refused (Discord) asks this first; ``generate`` checks again. The
        estimate is the one that will run (an equivalent provider's when the chosen one has no key)."""
        estimate = self.estimate(tool, arguments)
        check_inputs(estimate.spec, estimate.params, allow_local=allow_local_files)
        estimate, _ = self._route(estimate)
        await self.ledger.check(account.requester, estimate.quote.micros, tool=estimate.spec.tool,
                                what=_what(estimate.spec))
        return estimate

    # -- generation -------------------------------------------------------------------------

    async def generate(self, account: Account, tool: str, arguments: Mapping[str, Any], *,
                       wait: float | None = None, on_event: EventCallback | None = None,
                       allow_local_files: bool = True, idempotency_key: str | None = None,
                       origin: Mapping[str, Any] | None = None,
                       on_job: Callable[[Job], Awaitable[None]] | None = None) -> Job:
        """Run one generation. ``wait``: seconds to follow it (None = to the end, 0 = return once
        submitted). A repeated ``idempotency_key`` returns the first job instead of paying twice.
        ``on_job`` hears the job as soon as it is recorded, before anything is sent, so a caller
        that gives up later knows which job to cancel."""
        # Keys are scoped to the account: another account reusing a key gets its own job, never
        # a view of someone else's.
        key = f"{account.name}:{idempotency_key}" if idempotency_key is not None else uuid.uuid4().hex
        if idempotency_key is not None:
            existing = await self.engine.find_by_idempotency_key(key)
            if existing is not None:
                return await self._follow(existing, wait, on_event)
        estimate = self.estimate(tool, arguments)
        check_inputs(estimate.spec, estimate.params, allow_local=allow_local_files)
        estimate, moved = self._route(estimate)
        spec, params = estimate.spec, estimate.params
        adapter = self.adapters[spec.provider.value]
        created: list[Job] = []

        def record_job(conn: sqlite3.Connection, hold_id: str) -> str:  # in the reservation's one hop
            job = self.engine.create_in(
                conn, account=account.name, tool=spec.tool, params=params.public_params(),
                estimate_micros=estimate.quote.micros, hold_id=hold_id, idempotency_key=key, origin=origin,
                failover=moved)
            created.append(job)
            return job.id

        reservation = await self.ledger.reserve(account.requester, estimate.quote.micros, key, tool=spec.tool,
                                                what=_what(spec), tx_hook=record_job)
        if reservation.existing:  # a concurrent retry with the same key won the race
            return await self._follow(await self._job_for_key(key), wait, on_event)
        job = created[0]
        self.warnings[job.id] = reservation.warnings
        try:
            if on_job is not None:
                await on_job(job)
            ready = await prepare_inputs(spec, params, adapter)
            if ready is not params:
                job = await self.engine.update_params(job.id, ready.public_params())
        except (MediaError, ProviderError) as exc:
            await self.engine.fail_pending(job.id, "input upload failed", str(exc))
            raise UserError(f"Uploading the input failed: {exc} Nothing was charged.") from None
        except BaseException:
            # Given up (a cancelled request) or broken before the submit: nothing was sent, so
            # the job fails now and its hold is released, rather than waiting for a restart.
            await asyncio.shield(self.engine.fail_pending(job.id, "abandoned before submit",
                                                          "Stopped before it was sent; nothing was charged."))
            raise
        # A job already moved (no key for its provider) is not moved again: failover happens once.
        reroute = None if moved else self._failover_hook(account, estimate)
        job = await self.engine.submit(job, ready.provider_payload(), reroute=reroute)
        return await self._follow(job, wait, on_event)

    def _failover_hook(self, account: Account, estimate: Estimate) -> Callable[[Job, ProviderError],
                                                                             Awaitable[Reroute | str | None]]:
        """What the engine asks when ``estimate``'s provider refused the submit unsent: the same
        request on the equivalent endpoint, its inputs uploaded there, its hold moved along (raised
        only within the quota), or why it cannot move."""

        async def reroute(job: Job, exc: ProviderError) -> Reroute | str | None:
            other = self.equivalent(estimate.spec, estimate.params)
            if not isinstance(other, Estimate):
                return other
            target = other.spec
            try:
                ready = await prepare_inputs(target, other.params, self.adapters[target.provider.value])
            except (MediaError, ProviderError) as upload:
                return f"uploading the input to {target.provider.value} failed ({upload})"

            async def move_hold(tx: Transaction, moved: Job) -> None:
                if moved.hold_id:
                    await self.ledger.move_hold(moved.hold_id, account.requester, tool=target.tool,
                                                estimate_micros=other.quote.micros, what=_what(target), tx=tx)

            return Reroute(tool=target.tool, provider=target.provider.value, endpoint_id=target.endpoint_id,
                           params=ready.public_params(), estimate_micros=other.quote.micros,
                           payload=ready.provider_payload(), tx_hook=move_hold,
                           reason=f"{job.provider} refused the submit ({exc.kind.value.replace('_', ' ')})")

        return reroute

    async def _job_for_key(self, key: str) -> Job:
        job = await self.engine.find_by_idempotency_key(key)
        if job is None:
            raise UserError("A request with this idempotency key was reserved but its job is missing; "
                            "`videogen holds` lists it for the operator.")
        return job

    async def _follow(self, job: Job, wait: float | None, on_event: EventCallback | None) -> Job:
        if job.finished or wait == 0:
            if not job.finished:
                self.engine.track(job.id)
            return job
        return await self.engine.wait(job.id, timeout=wait, on_event=on_event, known=job)

    # -- jobs -------------------------------------------------------------------------------

    async def get_job(self, account: Account, job_id: str) -> Job:
        """A job the account may see: its own, or any for an admin (others look like no job)."""
        job = await self.engine.get(job_id)
        if job.account != account.name and not account.is_admin:
            raise JobNotFound(job_id)
        return job

    async def wait_for_job(self, account: Account, job_id: str, *, timeout: float | None = None,
                           on_event: EventCallback | None = None) -> Job:
        job = await self.get_job(account, job_id)
        return await self._follow(job, timeout, on_event)

    async def list_jobs(self, account: Account, *, limit: int = 20, all_accounts: bool = False) -> list[Job]:
        if all_accounts and not account.is_admin:
            raise UserError("Only admins can list every account's jobs.")
        return await self.engine.list(account=None if all_accounts else account.name, limit=limit)

    async def record_delivery(self, job_id: str, status: str, detail: str) -> Job:
        """What became of a finished job's result on its surface (see ``JobEngine.record_delivery``)."""
        return await self.engine.record_delivery(job_id, status, detail)

    async def cancel_job(self, account: Account, job_id: str) -> tuple[Job, str]:
        await self.get_job(account, job_id)
        return await self.engine.cancel(job_id)

    async def job_page(self, account: Account, *, tools: frozenset[str] | None = None,
                       states: frozenset[JobState] | None = None, since: float | None = None,
                       until: float | None = None, before: tuple[float, str] | None = None,
                       limit: int = 24) -> tuple[list[Job], tuple[float, str] | None]:
        """One page of the account's own jobs, newest first, and the cursor of the next page."""
        return await self.engine.page(account=account.name, tools=tools, states=states, since=since, until=until,
                                      before=before, limit=limit)

    async def job_events(self, account: Account, job_id: str) -> list[JobEventRow]:
        await self.get_job(account, job_id)
        return await self.engine.events(job_id)

    async def output_file(self, account: Account, job_id: str, index: int) -> tuple[Path, str]:
        """The kept file of a job's output and its content type; ``JobNotFound`` for anything the
        account may not see or that is not a file inside the media directory."""
        job = await self.get_job(account, job_id)
        output = job.outputs[index] if 0 <= index < len(job.outputs) else {}
        path = self.media.inside(output.get("path"))
        if path is None:
            raise JobNotFound(job_id)
        return path, output.get("content_type") or "application/octet-stream"

    def quote_of(self, job: Job) -> Estimate | None:
        """The price (with its formula) of a job's stored parameters; None if they no longer validate."""
        try:
            return self.estimate(job.tool, {k: v for k, v in job.params.items() if v != "**********"})
        except UserError:
            return None

    async def reroll(self, account: Account, job_id: str, *, origin: Mapping[str, Any] | None = None) -> Job:
        """The same generation again with a new seed, paid like any other; returns once submitted."""
        job = await self.get_job(account, job_id)
        return await self.generate(account, job.tool, reroll_arguments(job), wait=0, allow_local_files=False,
                                   origin=origin)

    async def animate(self, account: Account, job_id: str, index: int = 0, *,
                      origin: Mapping[str, Any] | None = None) -> Job:
        """One image of a finished image job, animated by the default image-to-video model."""
        job = await self.get_job(account, job_id)
        if get(job.tool).output.kind is not OutputKind.IMAGES or not 0 <= index < len(job.outputs):
            raise UserError(f"Job {job.id} has no image {index + 1} to animate.")
        url = job.outputs[index].get("url")
        if not url:
            raise UserError("That image is no longer available to animate.")
        return await self.generate(account, ANIMATE_TOOL, animate_arguments(job, url), wait=0,
                                   allow_local_files=False, origin=origin)

    # -- accounts, quotas, spend -----------------------------------------------------------

    def local_account(self) -> Account:
        """The operator at this machine (CLI, stdio MCP): an admin."""
        return Account(LOCAL_ACCOUNT, is_admin=True)

    def _is_admin(self, name: str, discord_user: str | None = None, roles: tuple[str, ...] = ()) -> bool:
        admins = self.settings.admins
        return (name in admins.accounts or name == LOCAL_ACCOUNT
                or (discord_user is not None and int(discord_user) in admins.discord_user_ids)
                or any(int(r) in admins.discord_role_ids for r in roles))

    async def account_for_token(self, token: str) -> Account | None:
        """The account an HTTP bearer token belongs to, or None for an unknown or revoked token."""
        name = await self.ledger.account_for_token(token)
        return None if name is None else Account(name, is_admin=self._is_admin(name))

    async def account_for_token_hash(self, token_hash: str) -> Account | None:
        """Like ``account_for_token``, from the stored hash (what a dashboard session remembers)."""
        name = await self.ledger.account_for_token_hash(token_hash)
        return None if name is None else Account(name, is_admin=self._is_admin(name))

    async def account_for_discord(self, user_id: int | str, guild_id: int | str | None = None,
                                  role_ids: tuple[int | str, ...] = ()) -> Account:
        name = await self.ledger.account_for_discord(user_id)
        roles = tuple(str(r) for r in role_ids)
        return Account(name, is_admin=self._is_admin(name, str(user_id), roles),
                       guild_id=None if guild_id is None else str(guild_id), role_ids=roles)

    async def quota_status(self, account: Account) -> list[LimitStatus]:
        return await self.ledger.status(account.requester)

    async def spend_report(self, account: Account, *, by: str = "account", since: date | None = None,
                           all_accounts: bool = False) -> list[SpendRow]:
        if all_accounts and not account.is_admin:
            raise UserError("Only admins can see every account's spend.")
        return await self.ledger.spend(by=by, since=since, account=None if all_accounts else account.name)

    async def spend_by_day(self, account: Account, *, by: str = "model", since: date,
                           all_accounts: bool = False) -> dict[str, dict[str, int]]:
        """Settled spend per day and per model (or account): the dashboard's chart."""
        if all_accounts and not account.is_admin:
            raise UserError("Only admins can see every account's spend.")
        return await self.ledger.spend_by_day(by=by, since=since, account=None if all_accounts else account.name)

    async def reserve_charge(self, account: Account, micros: int, key: str, *, tool: str, what: str) -> Reservation:
        """Hold ``micros`` for something that is not a generation (a chat agent's model call, tool
        ``llm:<model>``) against every spend limit, as ``generate`` does; ``QuotaExceeded`` if it can't."""
        return await self.ledger.reserve(account.requester, micros, f"{account.name}:{key}", tool=tool, what=what)

    async def settle_charge(self, hold_id: str, micros: int, *, detail: str = "") -> bool:
        return await self.ledger.settle(hold_id, micros, detail=detail)

    async def release_charge(self, hold_id: str, *, detail: str = "") -> bool:
        return await self.ledger.release(hold_id, detail=detail)

    async def open_holds(self, account: Account) -> list[Hold]:
        """Holds not yet settled or released, with their job's state — the operator's to-do list."""
        self._require_admin(account, "list open holds")
        return await self.ledger.holds()

    async def resolve_hold(self, account: Account, hold_id: str, *, charge_micros: int | None) -> bool:
        """An operator's verdict on a hold whose job outcome is unknown: charge it, or release it."""
        self._require_admin(account, "resolve holds")
        if charge_micros is None:
            return await self.ledger.release(hold_id, detail="released by operator", actor=account.name)
        return await self.ledger.settle(hold_id, charge_micros, detail="settled by operator", actor=account.name)

    async def check_books(self, account: Account) -> BooksCheck:
        """Recompute the running totals from the holds and the holds from the audit; list differences."""
        self._require_admin(account, "check the books")
        return await self.ledger.check_books()

    async def reconcile(self, account: Account, *, since: date | None = None, apply: bool = False) -> "ReconcileReport":
        """Compare settled charges with what the providers billed (fal per request with
        ``[fal] admin_key``, WaveSpeed per day and model); ``apply`` sets fal jobs' charges to
        fal's figures through the ledger. Admins only."""
        self._require_admin(account, "reconcile spend with the providers' bills")
        from .providers.billing import FalBilling, WaveSpeedUsage  # late: only this command talks to billing
        from .reconcile import default_since, reconcile

        now = self.ledger.clock()
        fal = wavespeed = None
        try:
            if self.settings.fal.admin_key is not None:
                fal = FalBilling(self.settings.fal.admin_key, self.settings.fal.api_url)
            if self.settings.wavespeed.key is not None:
                wavespeed = WaveSpeedUsage(self.settings.wavespeed.key, self.settings.wavespeed.base_url)
            return await reconcile(self.db, self.ledger, since=since or default_since(now), now=now, fal=fal,
                                   wavespeed=wavespeed, apply=apply, actor=account.name)
        except ProviderError as exc:
            raise UserError(f"Reconciliation stopped: {exc.message}") from None
        finally:
            for client in (fal, wavespeed):
                if client is not None:
                    await client.aclose()

    # -- administration ---------------------------------------------------------------------

    @staticmethod
    def _require_admin(account: Account, action: str) -> None:
        if not account.is_admin:
            raise UserError(f"Only admins can {action}.")

    async def add_account(self, admin: Account, name: str) -> None:
        self._require_admin(admin, "add accounts")
        await self.ledger.add_account(name, actor=admin.name)

    async def list_accounts(self, admin: Account) -> list[dict[str, Any]]:
        self._require_admin(admin, "list accounts")
        return await self.ledger.accounts()

    async def list_tokens(self, admin: Account) -> list[TokenInfo]:
        self._require_admin(admin, "list tokens")
        return await self.ledger.tokens()

    async def revoke_token(self, admin: Account, token_hash: str) -> bool:
        """Revoke a token: every HTTP request and dashboard session using it stops working."""
        self._require_admin(admin, "revoke tokens")
        return await self.ledger.revoke_token(token_hash, actor=admin.name)

    async def limit_overrides(self, admin: Account) -> list[tuple[str, str, Limits]]:
        self._require_admin(admin, "read limits")
        return await self.ledger.limit_overrides()

    async def audit_log(self, admin: Account, *, before: int | None = None, limit: int = 50) -> list[AuditEntry]:
        self._require_admin(admin, "read the audit log")
        return await self.ledger.audit_page(before=before, limit=limit)

    async def link_discord(self, admin: Account, name: str, user_id: int | str) -> None:
        self._require_admin(admin, "link identities")
        await self.ledger.link_discord(name, user_id, actor=admin.name)

    async def create_token(self, admin: Account, name: str, *, label: str = "") -> str:
        self._require_admin(admin, "create tokens")
        return await self.ledger.create_token(name, label=label, actor=admin.name)

    async def set_limits(self, admin: Account, scope: str, scope_id: str, limits: Limits) -> Limits:
        self._require_admin(admin, "change limits")
        return await self.ledger.set_limits(scope, scope_id, limits, actor=admin.name)

    async def stored_limits(self, admin: Account, scope: str, scope_id: str) -> Limits:
        self._require_admin(admin, "read other scopes' limits")
        return await self.ledger.stored_limits(scope, scope_id)


def _what(spec: ModelSpec) -> str:
    """``This Sora 2 Pro clip`` — how a refusal names the thing that was asked for."""
    name = spec.title.split(" — ")[0]
    return f"This {name} {'image' if spec.output.kind is OutputKind.IMAGES else 'clip'}"
