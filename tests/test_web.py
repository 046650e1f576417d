"""The dashboard's routes through Starlette's TestClient: a real app on a real SQLite file, with the
provider simulator started by the app's own lifespan (``videogen web --simulate``), real generations.

The Toolkit lives in the TestClient's event loop (its portal thread); the tests reach it through
``portal.call`` so every database call runs where the app runs.
"""

from __future__ import annotations

import functools
import re
from html import unescape
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from agent_tools.cli.main import main as videogen
from agent_tools.jobs import JobState
from agent_tools.ledger import hash_token
from agent_tools.money import format_usd
from agent_tools.toolkit import Account
from agent_tools.web import create_app
from agent_tools.web.session import SESSION_COOKIE
from processes import guarded
from web_support import ADMIN, Clock, csrf_of, web_settings

ALICE, BOB, BOSS = Account("alice"), Account("bob"), Account(ADMIN, is_admin=True)
PROMPT = "a lighthouse at dusk, waves"
ORIGIN = "http://testserver"


class Site:
    """A running dashboard, its Toolkit, and a browser-like client per account."""

    def __init__(self, client: TestClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.toolkit = client.app.state.dashboard.toolkit
        self.tokens: dict[str, str] = {}

    def call(self, fn, *args, **kwargs):
        return self.client.portal.call(functools.partial(fn, *args, **kwargs))

    def token(self, name: str) -> str:
        if name not in self.tokens:
            if name != "local":
                self.call(self.toolkit.ledger.ensure_account, name)
            self.tokens[name] = self.call(self.toolkit.ledger.create_token, name, label=f"{name} test")
        return self.tokens[name]

    def browser(self, name: str | None = None) -> TestClient:
        """A fresh cookie jar on the same app (another person's browser); signed in as ``name``."""
        other = TestClient(self.client.app, base_url=ORIGIN)
        other.portal = self.client.portal  # the same running app, its lifespan and its loop
        if name is not None:
            response = sign_in(other, self.token(name))
            assert response.status_code == 303, response.text
        return other

    def job(self, account: Account, prompt: str = PROMPT, tool: str = "pika_text_to_video"):
        job = self.call(self.toolkit.generate, account, tool, {"prompt": prompt}, wait=0)
        return self.call(self.toolkit.wait_for_job, account, job.id, timeout=30)


def sign_in(client: TestClient, token: str, next_path: str | None = None):
    page = client.get("/login", headers={"accept": "text/html"})
    data = {"csrf": csrf_of(page.text), "token": token}
    if next_path:
        data["next"] = next_path
    return client.post("/login", data=data, follow_redirects=False)


def post(client: TestClient, path: str, page: str, data: dict | None = None, **kwargs):
    """A form POST the way a browser sends it: the CSRF token of ``page`` and the page's origin."""
    token = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf": token, **(data or {})}, headers={"origin": ORIGIN},
                       follow_redirects=False, **kwargs)


@pytest.fixture
def site(tmp_path, clean_env):
    clock = Clock()
    app = create_app(settings=web_settings(tmp_path), simulate=True, secret=b"s" * 32, clock=clock)
    with TestClient(app, base_url=ORIGIN) as client:
        yield Site(client, clock)


# -- sign-in and sessions ---------------------------------------------------------------------------

def test_sign_in_sets_a_strict_httponly_expiring_cookie_and_lands_on_the_gallery(site):
    client = site.browser()
    response = sign_in(client, site.token("alice"))
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie and "Path=/" in cookie
    assert site.tokens["alice"] not in cookie  # the cookie names the token's hash, never the token
    page = client.get("/")
    assert page.status_code == 200 and 'data-account="alice"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_a_wrong_or_missing_token_or_csrf_is_refused_with_the_reason(site):
    client = site.browser()
    response = sign_in(client, "vg_not-a-real-token")
    assert response.status_code == 401 and "not valid (unknown or revoked)" in response.text
    assert SESSION_COOKIE not in client.cookies
    stale = client.post("/login", data={"csrf": "forged", "token": site.token("alice")}, follow_redirects=False)
    assert stale.status_code == 403 and "expired" in stale.text and SESSION_COOKIE not in client.cookies


def test_signed_out_pages_redirect_to_sign_in_and_back_and_fetches_get_401(site):
    client = site.browser()
    page = client.get("/usage?days=7", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fusage%3Fdays%3D7"
    assert client.get("/jobs/abc/card").status_code == 401
    assert client.get("/media/abc/0").status_code == 401
    landed = sign_in(client, site.token("alice"), next_path="/usage?days=7")
    assert landed.headers["location"] == "/usage?days=7"


@pytest.mark.parametrize("target", ["//evil.example/x", "/\t/evil.example", "/\\evil.example", "https://evil.example"])
def test_sign_in_never_redirects_off_site(site, target):
    response = sign_in(site.browser(), site.token("alice"), next_path=target)
    assert response.headers["location"] == "/"


def test_an_expired_or_tampered_session_is_signed_out(site):
    client = site.browser("alice")
    assert client.get("/", follow_redirects=False).status_code == 200
    value = client.cookies[SESSION_COOKIE]
    token_hash, expires, nonce, mac = value.split(".")

    def status(cookie: str) -> int:
        return site.browser().get("/", headers={"accept": "text/html", "cookie": f"{SESSION_COOKIE}={cookie}"},
                                  follow_redirects=False).status_code

    assert status(value) == 200
    assert status(f"{token_hash}.{int(expires) + 10**6}.{nonce}.{mac}") == 303  # a longer life is forged
    assert status(f"{token_hash}.{expires}.{nonce}.{mac[:-1]}A") == 303 or mac.endswith("A")
    assert status("garbage") == 303
    site.clock.offset = 12 * 3600 + 1
    assert status(value) == 303


def test_revoking_a_token_ends_its_session_at_the_next_click(site):
    alice = site.browser("alice")
    boss = site.browser(ADMIN)
    assert alice.get("/").status_code == 200
    token_hash = hash_token(site.tokens["alice"])
    done = post(boss, "/admin/tokens/revoke", "/admin/accounts", {"token_hash": token_hash})
    assert done.status_code == 303 and "revoked" in boss.get(done.headers["location"]).text
    assert alice.get("/", headers={"accept": "text/html"}, follow_redirects=False).status_code == 303
    assert site.call(site.toolkit.account_for_token, site.tokens["alice"]) is None
    again = post(boss, "/admin/tokens/revoke", "/admin/accounts", {"token_hash": token_hash})
    assert "already revoked" in boss.get(again.headers["location"]).text


def test_sign_out_clears_the_cookie(site):
    client = site.browser("alice")
    response = post(client, "/logout", "/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies


# -- CSRF and origin ----------------------------------------------------------------------------------

def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused_and_costs_nothing(site):
    client = site.browser("alice")
    missing = client.post("/generate", data={"model": "pika_text_to_video", "prompt": "x"}, follow_redirects=False)
    assert missing.status_code == 403 and "security token" in missing.text
    token = csrf_of(client.get("/").text)
    foreign = client.post("/generate", data={"csrf": token, "model": "pika_text_to_video", "prompt": "x"},
                          headers={"origin": "https://evil.example"}, follow_redirects=False)
    assert foreign.status_code == 403
    other = site.browser("bob")
    stolen = other.post("/generate", data={"csrf": token, "model": "pika_text_to_video", "prompt": "x"},
                        follow_redirects=False)
    assert stolen.status_code == 403  # a CSRF token belongs to one session
    assert site.call(site.toolkit.list_jobs, ALICE) == [] and site.call(site.toolkit.list_jobs, Account("bob")) == []


# -- gallery, job page, media -------------------------------------------------------------------------

def test_a_generation_from_the_gallery_appears_finishes_and_plays(site):
    client = site.browser("alice")
    started = post(client, "/generate", "/", {"model": "pika_text_to_video", "prompt": PROMPT})
    assert started.status_code == 303
    job_id = started.headers["location"].split("started=")[1]
    gallery = client.get("/")
    assert f'id="job-{job_id}"' in gallery.text and PROMPT in gallery.text
    job = site.call(site.toolkit.wait_for_job, ALICE, job_id, timeout=30)
    assert job.state is JobState.SUCCEEDED
    card = client.get(f"/jobs/{job_id}/card")
    assert 'data-state="succeeded"' in card.text and "data-poll" not in card.text and "<video" in card.text
    page = client.get(f"/jobs/{job_id}")
    text = page.text
    assert f'src="/media/{job_id}/0"' in text and "controls" in text and "?download=1" in text
    assert "Parameters" in text and "prompt" in text and "Timeline" in text
    assert all(state in text for state in ("pending", "queued", "succeeded"))
    quote = site.toolkit.quote_of(job)
    assert quote is not None and quote.quote.formula in text.replace("&#39;", "'").replace("&amp;", "&")
    assert "Re-roll" in text and "Cancel" not in text and "Animate" not in text
    media = client.get(f"/media/{job_id}/0")
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"
    assert media.content[4:8] == b"ftyp"
    ranged = client.get(f"/media/{job_id}/0", headers={"range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    assert ranged.headers["content-range"].startswith("bytes 0-99/")
    download = client.get(f"/media/{job_id}/0?download=1")
    assert download.headers["content-disposition"].startswith("attachment")


def test_a_job_that_failed_over_says_where_it_ran_and_why(site):
    client = site.browser("alice")
    plain = site.job(ALICE)
    job = site.call(site.toolkit.generate, ALICE, "hunyuan_video_image_to_video",
                    {"prompt": "a lighthouse [sim:fal_refuse=429]", "image_url": "https://example.com/still.png"},
                    wait=0)
    job = site.call(site.toolkit.wait_for_job, ALICE, job.id, timeout=30)
    assert job.state is JobState.SUCCEEDED and job.provider == "wavespeed"
    page = unescape(client.get(f"/jobs/{job.id}").text)
    assert ("Ran on wavespeed (wavespeed_hunyuan_video_i2v) instead of fal (hunyuan_video_image_to_video): "
            "fal refused the submit (rate limited).") in page
    card = unescape(client.get(f"/jobs/{job.id}/card").text)
    assert "on wavespeed instead of fal" in card
    gallery = client.get("/").text
    assert gallery.count("data-failover") == 1, "only the job that moved says so"
    assert "data-failover" not in client.get(f"/jobs/{plain.id}").text


def test_a_running_job_polls_its_card_until_it_is_done(site):
    client = site.browser("alice")
    job = site.call(site.toolkit.generate, ALICE, "pika_text_to_video", {"prompt": "slow one [sim:slow=30]"}, wait=0)
    card = client.get(f"/jobs/{job.id}/card")
    assert f'data-poll="/jobs/{job.id}/card"' in card.text and 'role="status"' in card.text
    page = client.get(f"/jobs/{job.id}")
    assert "data-reload-when-done" in page.text and "Cancel" in page.text
    cancelled = post(client, f"/jobs/{job.id}/cancel", f"/jobs/{job.id}")
    assert cancelled.status_code == 303 and "notice=" in cancelled.headers["location"]
    done = site.call(site.toolkit.wait_for_job, ALICE, job.id, timeout=30)
    assert done.state is JobState.CANCELLED
    assert "data-poll" not in client.get(f"/jobs/{job.id}/card").text


def test_another_accounts_job_and_media_are_404(site):
    job = site.job(ALICE)
    bob = site.browser("bob")
    for path in (f"/jobs/{job.id}", f"/jobs/{job.id}/card", f"/media/{job.id}/0", f"/media/{job.id}/0?download=1",
                 "/jobs/0123456789abcdef", f"/media/{job.id}/7"):
        assert bob.get(path).status_code == 404, path
    for action in ("cancel", "reroll", "animate"):
        assert post(bob, f"/jobs/{job.id}/{action}", "/").status_code == 404
    assert site.call(site.toolkit.list_jobs, Account("bob")) == []


def test_media_outside_the_media_dir_is_never_served(site, tmp_path):
    job = site.job(ALICE)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    media_dir = site.toolkit.media.media_dir
    (media_dir / job.id / "link.mp4").symlink_to(secret)
    client = site.browser("alice")
    for path in (str(secret), str(media_dir / job.id / "link.mp4"), str(media_dir / ".." / "secret.txt")):
        async def point(path=path):
            async with site.toolkit.db.transaction() as tx:
                await tx.execute("UPDATE jobs SET outputs = ? WHERE id = ?",
                                 (f'[{{"path": "{path}", "content_type": "video/mp4"}}]', job.id))
        site.call(point)
        assert client.get(f"/media/{job.id}/0").status_code == 404, path
    assert client.get(f"/media/{job.id}/..%2F..%2Fsecret.txt").status_code == 404


def test_an_image_job_offers_animate_and_reroll_makes_a_new_paid_job(site):
    job = site.job(ALICE, tool="hunyuan_image_v3", prompt="a red kite")
    client = site.browser("alice")
    page = client.get(f"/jobs/{job.id}")
    assert "Animate" in page.text and f'alt="a red kite"' in page.text
    assert client.get(f"/media/{job.id}/0").headers["content-type"].startswith("image/")
    rerolled = post(client, f"/jobs/{job.id}/reroll", f"/jobs/{job.id}")
    new_id = rerolled.headers["location"].split("?")[0].rsplit("/", 1)[1]
    assert new_id != job.id and site.call(site.toolkit.get_job, ALICE, new_id).tool == "hunyuan_image_v3"
    animated = post(client, f"/jobs/{job.id}/animate", f"/jobs/{job.id}", {"index": "0"})
    anim_id = animated.headers["location"].split("?")[0].rsplit("/", 1)[1]
    anim = site.call(site.toolkit.get_job, ALICE, anim_id)
    assert anim.tool == "hailuo_02_image_to_video" and anim.params["image_url"] == job.outputs[0]["url"]
    video = site.job(ALICE)
    assert "no image 1 to animate" in post(client, f"/jobs/{video.id}/animate", f"/jobs/{video.id}").text


def test_prompts_are_escaped_not_run(site):
    site.job(ALICE, prompt="<script>alert(1)</script> a cat")
    client = site.browser("alice")
    text = client.get("/").text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_gallery_filters_and_pages_without_repeats(site):
    async def seed():
        for i in range(30):
            await site.toolkit.engine.create(account="alice", tool="pika_text_to_video", params={"prompt": f"p{i}"},
                                             estimate_micros=0)
        await site.toolkit.engine.create(account="alice", tool="veo3_fast", params={"prompt": "veo"},
                                         estimate_micros=0)
    site.call(seed)
    client = site.browser("alice")
    first = client.get("/")
    ids = re.findall(r'data-job="([0-9a-f]+)"', first.text)
    assert len(ids) == 24
    older = re.search(r'href="/\?(before=[^"]+)"', first.text).group(1)
    second = client.get("/?" + older.replace("&amp;", "&"))
    more = re.findall(r'data-job="([0-9a-f]+)"', second.text)
    assert len(more) == 7 and not set(ids) & set(more) and "Older jobs" not in second.text
    veo = client.get("/?model=veo3_fast")
    assert len(re.findall(r'data-job="', veo.text)) == 1
    assert len(re.findall(r'data-job="', client.get("/?state=succeeded").text)) == 0
    tomorrow = (datetime.now() + timedelta(days=2)).date().isoformat()
    assert "No jobs match" in client.get(f"/?since={tomorrow}").text
    bad = client.get("/?model=nope")
    assert bad.status_code == 400 and "Unknown model 'nope'" in unescape(bad.text)
    assert client.get("/?since=yesterday").status_code == 400


def test_a_refused_generation_says_why_and_keeps_the_prompt(site):
    client = site.browser("alice")
    empty = post(client, "/generate", "/", {"model": "pika_text_to_video", "prompt": "  "})
    assert empty.status_code == 400 and "Write a prompt" in empty.text
    unknown = post(client, "/generate", "/", {"model": "pika_image_to_video", "prompt": "x"})
    assert unknown.status_code == 400 and "Choose a model" in unknown.text


# -- usage ---------------------------------------------------------------------------------------------

def test_usage_shows_the_chart_limits_and_the_table_of_videogen_spend(site, capsys, monkeypatch):
    site.job(ALICE)
    site.job(ALICE, tool="hunyuan_image_v3", prompt="a kite")
    site.job(Account("bob"))
    client = site.browser("alice")
    page = client.get("/usage")
    assert page.status_code == 200
    rows = site.call(site.toolkit.spend_report, ALICE, by="model")
    spent = sum(r.settled_micros for r in rows)
    assert spent > 0
    assert f'aria-label="Your spend by day, 30 days, total {format_usd(spent)}"' in page.text
    assert len(re.findall(r'<g class="day"', page.text)) == 30
    assert page.text.count('data-key="') == 2  # today's bar: two models stacked
    for row in rows:
        assert f"<td>{row.key}</td><td>{row.jobs}</td><td>{format_usd(row.settled_micros)}</td>" in page.text
    assert "<meter" in page.text and "account · daily" in page.text and "resets at" in page.text
    assert client.get("/usage?by=nonsense").status_code == 400
    # the admin's table is `videogen spend --by account --since …`, figure for figure
    boss = site.browser(ADMIN)
    admin_page = boss.get("/admin").text
    since = re.search(r"--since (\d{4}-\d\d-\d\d)", admin_page).group(1)
    settings = site.toolkit.settings
    monkeypatch.setenv("VIDEOGEN_DB", str(settings.storage.database))
    monkeypatch.setenv("VIDEOGEN_MEDIA_DIR", str(settings.storage.media_dir))
    capsys.readouterr()
    assert videogen(["spend", "--by", "account", "--since", since]) == 0
    for line in capsys.readouterr().out.splitlines()[2:]:
        key, jobs, spent_usd, open_usd = line.split()
        cells = f"<td>{jobs}</td><td>{spent_usd}</td><td>{open_usd}</td>"
        assert (f"<td>{key}</td>{cells}" if key != "total" else f'<th scope="row">total</th>{cells}') in admin_page


# -- admin ---------------------------------------------------------------------------------------------

def test_admin_pages_are_refused_to_non_admins_on_the_server(site):
    alice = site.browser("alice")
    assert "Admin</a>" not in alice.get("/").text
    for path in ("/admin", "/admin/limits", "/admin/accounts", "/admin/audit"):
        response = alice.get(path)
        assert response.status_code == 403 and "admins only" in response.text, path
    token = csrf_of(alice.get("/").text)
    for path, data in (("/admin/limits", {"scope": "account", "scope_id": "alice", "daily": "999"}),
                       ("/admin/tokens", {"account": "alice"}), ("/admin/accounts", {"name": "mallory"}),
                       ("/admin/tokens/revoke", {"token_hash": hash_token(site.tokens["alice"])})):
        assert alice.post(path, data={"csrf": token, **data}).status_code == 403, path
    assert site.call(site.toolkit.ledger.stored_limits, "account", "alice").empty
    assert site.call(site.toolkit.account_for_token, site.tokens["alice"]) is not None
    assert "mallory" not in [a["name"] for a in site.call(site.toolkit.list_accounts, BOSS)]


def test_an_admin_lowers_a_limit_and_the_next_generation_is_refused(site):
    site.token("alice")
    boss = site.browser(ADMIN)
    bad = post(boss, "/admin/limits", "/admin/limits", {"scope": "account", "scope_id": "alice", "daily": "lots"})
    assert bad.status_code == 400 and "dollar amount such as 5 or 2.50, not 'lots'" in unescape(bad.text)
    nothing = post(boss, "/admin/limits", "/admin/limits", {"scope": "account", "scope_id": "alice"})
    assert nothing.status_code == 400 and "at least one limit" in nothing.text
    saved = post(boss, "/admin/limits", "/admin/limits", {"scope": "account", "scope_id": "alice", "daily": "0.01"})
    assert saved.status_code == 303
    assert 'data-scope="account:alice"' in boss.get(saved.headers["location"]).text
    limits = site.call(site.toolkit.ledger.effective_limits, ALICE.requester)
    assert limits[("account", "alice")].daily_micros == 10_000
    alice = site.browser("alice")
    refused = post(alice, "/generate", "/", {"model": "pika_text_to_video", "prompt": PROMPT})
    assert refused.status_code == 400 and "costs" in refused.text and "daily limit" in refused.text
    assert PROMPT in refused.text  # the form keeps what was typed
    assert site.call(site.toolkit.list_jobs, ALICE) == []
    for scope, scope_id in (("role", "123"), ("guild", "456"), ("global", "")):
        done = post(boss, "/admin/limits", "/admin/limits", {"scope": scope, "scope_id": scope_id, "hourly": "7"})
        assert done.status_code == 303, done.text
        assert site.call(site.toolkit.ledger.stored_limits, scope, scope_id).jobs_per_hour == 7


def test_admin_settles_and_releases_open_holds(site):
    async def hold(key: str):
        return await site.toolkit.ledger.reserve(ALICE.requester, 250_000, key, tool="pika_text_to_video")
    first, second = site.call(hold, "k1"), site.call(hold, "k2")
    boss = site.browser(ADMIN)
    page = boss.get("/admin/limits").text
    assert f'data-hold="{first.hold_id}"' in page and f'data-hold="{second.hold_id}"' in page
    settled = post(boss, f"/admin/holds/{first.hold_id}/settle", "/admin/limits", {"usd": "0.20"})
    assert "settled" in boss.get(settled.headers["location"]).text
    post(boss, f"/admin/holds/{second.hold_id}/release", "/admin/limits")
    assert site.call(site.toolkit.open_holds, BOSS) == []
    books = site.call(site.toolkit.ledger.books)
    assert books["settled_micros"] == 200_000 and books["released"] == 1
    again = post(boss, f"/admin/holds/{first.hold_id}/release", "/admin/limits")
    assert "nothing changed" in boss.get(again.headers["location"]).text


def test_admin_creates_an_account_and_a_token_shown_once(site):
    boss = site.browser(ADMIN)
    added = post(boss, "/admin/accounts", "/admin/accounts", {"name": "carol"})
    assert added.status_code == 303
    duplicate = post(boss, "/admin/accounts", "/admin/accounts", {"name": "carol"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.text
    created = post(boss, "/admin/tokens", "/admin/accounts", {"account": "carol", "label": "laptop"})
    token = re.search(r'id="new-token" class="token" readonly value="(vg_[^"]+)"', created.text).group(1)
    assert created.headers["cache-control"] == "no-store"
    listing = boss.get("/admin/accounts").text
    assert token not in listing and hash_token(token)[:12] in listing and "laptop" in listing
    assert sign_in(site.browser(), token).status_code == 303
    unknown = post(boss, "/admin/tokens", "/admin/accounts", {"account": "nobody"})
    assert unknown.status_code == 400 and "No account 'nobody'" in unescape(unknown.text)


def test_the_audit_log_pages_newest_first(site):
    async def many():
        for i in range(60):
            await site.toolkit.ledger.add_account(f"user{i}", actor=ADMIN)
    site.call(many)
    boss = site.browser(ADMIN)
    first = boss.get("/admin/audit").text
    seqs = [int(s) for s in re.findall(r'data-seq="(\d+)"', first)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)
    older = re.search(r'href="/admin/audit\?before=(\d+)"', first).group(1)
    rest = [int(s) for s in re.findall(r'data-seq="(\d+)"', boss.get(f"/admin/audit?before={older}").text)]
    assert rest and max(rest) < min(seqs) and not set(rest) & set(seqs)


# -- assets ----------------------------------------------------------------------------------------------

def test_every_asset_is_local(site):
    client = site.browser("alice")
    site.job(ALICE)
    for path in ("/", "/usage", "/login"):
        html = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/../app.py").status_code == 404


# -- the command -----------------------------------------------------------------------------------------

def test_videogen_web_serves_the_dashboard_and_refuses_a_busy_port(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from agent_tools.serving import bind

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_"))}
    env.update(VIDEOGEN_DB=str(tmp_path / "videogen.db"), VIDEOGEN_MEDIA_DIR=str(tmp_path / "media"),
               XDG_CONFIG_HOME=str(tmp_path / "xdg"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    command = [sys.executable, "-m", "agent_tools.cli", "web", "--simulate", "--port", "0"]
    process = subprocess.Popen(guarded(*command), env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stderr:
            if (match := re.search(r"videogen dashboard at (http://\S+)/ ", line)):
                url = match.group(1)
                break
        assert url, "the command never said where it listens"
        page = httpx.get(url + "/login")
        assert page.status_code == 200 and 'name="token"' in page.text
    finally:
        process.send_signal(signal.SIGTERM)  # how a host stops a server: a clean exit
        assert process.wait(timeout=30) == 0
    busy = bind("127.0.0.1", 0)
    busy.listen()
    try:
        port = str(busy.getsockname()[1])
        done = subprocess.run([*command[:-1], port], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    finally:
        busy.close()
    assert done.returncode == 2 and f"Cannot listen on 127.0.0.1:{port}" in done.stderr


def test_binding_beyond_loopback_prints_the_reverse_proxy_advice():
    from agent_tools.cli.output import exposure_warning

    assert all(exposure_warning(host) is None for host in ("127.0.0.1", "localhost", "::1"))
    assert "put a TLS reverse proxy in front of it" in exposure_warning("0.0.0.0")


# -- beside /mcp ------------------------------------------------------------------------------------------

async def test_the_dashboard_is_served_beside_mcp_on_the_same_port(tmp_path, clean_env):
    import httpx
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from agent_tools.mcp_server.server import running_http
    from agent_tools.simulator.session import simulated
    from agent_tools.toolkit import Toolkit

    async with simulated(web_settings(tmp_path), True) as settings:
        toolkit = await Toolkit.open(settings)
        try:
            token = await toolkit.ledger.create_token("local")
            mounts = {"/dashboard": create_app(toolkit, origin={"simulated": True})}
            async with running_http(toolkit, mounts=mounts) as url:
                base = url.removesuffix("/mcp")
                async with httpx.AsyncClient(base_url=base) as http:
                    bare = await http.get("/dashboard?x=1")
                    assert bare.status_code == 307 and bare.headers["location"] == "/dashboard/?x=1"
                    login = await http.get("/dashboard/login")
                    assert 'action="/dashboard/login"' in login.text and "/dashboard/static/app.css" in login.text
                    assert (await http.get("/dashboard/static/app.js")).status_code == 200
                    signed = await http.post("/dashboard/login", data={"csrf": csrf_of(login.text), "token": token})
                    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard/"
                    assert "Path=/dashboard" in signed.headers["set-cookie"]
                    gallery = await http.get("/dashboard/")
                    assert gallery.status_code == 200 and 'data-account="local"' in gallery.text
                    assert (await http.get("/mcp")).status_code == 401  # the cookie is no bearer token
                bearer = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
                async with bearer, Client(streamable_http_client(url, http_client=bearer)) as client:
                    assert len((await client.list_tools()).tools) > 0  # /mcp is untouched beside it
        finally:
            await toolkit.close()


def test_mcp_web_needs_http(capsys):
    assert videogen(["mcp", "--web"]) == 2
    assert "add --http" in capsys.readouterr().err


def test_videogen_mcp_http_web_serves_both_on_one_port(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOGEN_", "FAL_", "WAVESPEED_"))}
    env.update(VIDEOGEN_DB=str(tmp_path / "videogen.db"), VIDEOGEN_MEDIA_DIR=str(tmp_path / "media"),
               XDG_CONFIG_HOME=str(tmp_path / "xdg"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    command = [sys.executable, "-m", "agent_tools.cli", "mcp", "--http", "--web", "--simulate", "--port", "0"]
    process = subprocess.Popen(guarded(*command), env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        dashboard = None
        for line in process.stderr:
            if (match := re.search(r"The dashboard is at (http://\S+/dashboard/) ", line)):
                dashboard = match.group(1)
                break
        assert dashboard, "the command never said where the dashboard is"
        page = httpx.get(dashboard + "login")
        assert page.status_code == 200 and 'action="/dashboard/login"' in page.text
        assert httpx.get(dashboard.removesuffix("/dashboard/") + "/mcp").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
