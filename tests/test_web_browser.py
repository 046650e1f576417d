"""The dashboard in a real browser: Playwright for Python driving Debian's Chromium (``/usr/bin/chromium``)
against ``videogen web --simulate`` served by uvicorn on loopback.

Skipped, with the reason, where no Chromium (or no Playwright) is found — unless
``VIDEOGEN_REQUIRE_BROWSER=1`` (CI sets it), where that is a failure. Every request the pages make
outside the app is aborted and recorded, so ``leaked == []`` shows the pages need no CDN. Screenshots
of each page go to the run's temp folder (the path is printed).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_tools.ledger import Requester
from agent_tools.serving import base_url, bind
from agent_tools.web import create_app
from web_support import ADMIN, web_settings

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
H264 = """document.createElement('video').canPlayType('video/mp4; codecs="avc1.42E01E"')"""
TIMEOUT_MS = 30_000


def chromium_path() -> str | None:
    for candidate in (os.environ.get("VIDEOGEN_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def no_browser(reason: str) -> None:
    if os.environ.get("VIDEOGEN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"VIDEOGEN_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"browser tests skipped: {reason} (apt-get install chromium; pip install playwright)")


class Server:
    """``videogen web --simulate`` in a thread with its own event loop, on a free loopback port."""

    def __init__(self, tmp: Path) -> None:
        import uvicorn

        self.app = create_app(settings=web_settings(tmp), simulate=True)
        self.sock = bind("127.0.0.1", 0)
        self.url = base_url("127.0.0.1", self.sock)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> "Server":
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the dashboard did not start")
            self.thread.join(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def call(self, fn, *args, **kwargs):
        """Run a Toolkit coroutine in the server's loop (where its database connection lives)."""
        return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self.loop).result(60)

    @property
    def toolkit(self):
        return self.app.state.dashboard.toolkit

    def spend_history(self, account: str, days: int = 14) -> None:
        """Settled spend on each of the last ``days`` days (reserved with the ledger's clock set back),
        so the usage chart has bars to stack: what a screenshot of a used account looks like."""
        ledger = self.toolkit.ledger
        real_clock = ledger.clock
        tools = ("pika_text_to_video", "sora_2_text_to_video", "veo3_fast")

        async def seed() -> None:
            try:
                for day in range(days, 0, -1):
                    for n, tool in enumerate(tools[: 1 + day % 3]):
                        ledger.clock = lambda day=day, n=n: real_clock() - day * 86400 + n * 60
                        hold = await ledger.reserve(Requester(account), 200_000 * (n + 1), f"history:{day}:{n}",
                                                    tool=tool)
                        await ledger.settle(hold.hold_id, 100_000 * (n + 1) + 50_000 * (day % 4))
            finally:
                ledger.clock = real_clock

        asyncio.run_coroutine_threadsafe(seed(), self.loop).result(60)

    def token(self, account: str) -> str:
        if account != "local":
            self.call(self.toolkit.ledger.ensure_account, account)
        return self.call(self.toolkit.ledger.create_token, account, label="browser test")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("web")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        no_browser("no Chromium found at /usr/bin/chromium or on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        no_browser("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\ndashboard screenshots: {folder}")
    return folder


class Person:
    """One browser context (its own cookies) with a guard that aborts and records off-site requests."""

    def __init__(self, browser, server: Server, *, phone: bool = False) -> None:
        options = {"viewport": {"width": 390, "height": 844}, "is_mobile": True} if phone else {
            "viewport": {"width": 1280, "height": 900}}
        self.context = browser.new_context(**options)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.leaked: list[str] = []
        self.context.route("**/*", self._guard(server.url))
        self.page = self.context.new_page()
        self.server = server

    def _guard(self, base: str):
        def guard(route) -> None:
            if route.request.url.startswith(base):
                route.continue_()
            else:
                self.leaked.append(route.request.url)
                route.abort()
        return guard

    def sign_in(self, token: str) -> None:
        self.page.goto(self.server.url + "/login")
        self.page.get_by_label("Account token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.server.url + "/")

    def close(self) -> None:
        assert self.leaked == [], f"the page asked for off-site resources: {self.leaked}"
        self.context.close()


@pytest.fixture
def people(browser, server):
    made: list[Person] = []

    def person(token: str | None = None, **options) -> Person:
        someone = Person(browser, server, **options)
        made.append(someone)
        if token is not None:
            someone.sign_in(token)
        return someone

    yield person
    for someone in made:
        someone.close()


def until(page, expression: str) -> None:
    """Wait for a JavaScript condition. (``page.wait_for_function`` evaluates a string in the page,
    which the dashboard's Content-Security-Policy rightly forbids; ``evaluate`` goes through CDP.)"""
    for _ in range(TIMEOUT_MS // 100):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")


def generate(page, prompt: str, model: str = "pika_text_to_video") -> None:
    page.locator("summary", has_text="New generation").click()
    page.get_by_label("Model", exact=True).select_option(model)
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Generate").click()


def test_sign_in_watch_a_job_finish_in_the_gallery_and_play_its_clip(people, server, shots):
    alice = people(server.token("alice"))
    server.spend_history("alice")
    page = alice.page
    page.screenshot(path=shots / "gallery-empty.png")
    generate(page, "a paper boat on a pond [sim:slow=3]")
    page.wait_for_url(re.compile(r".*started=([0-9a-f]+)$"))
    job_id = page.url.rsplit("=", 1)[1]
    card = page.locator(f"#job-{job_id}")
    assert card.get_attribute("data-poll") is not None  # it appeared unfinished…
    assert card.get_attribute("data-state") != "succeeded"
    page.wait_for_selector(f'#job-{job_id}[data-state="succeeded"]')  # …and the page updated it by itself
    assert page.locator(f"#job-{job_id} video").count() == 1
    generate(page, "a kite over the dunes", model="hunyuan_image_v3")
    page.wait_for_selector('article[data-state="succeeded"] img')
    page.screenshot(path=shots / "gallery.png", full_page=True)

    page.locator(f"#job-{job_id} a.thumb").click()
    page.wait_for_url(f"**/jobs/{job_id}")
    video = page.locator("main video[controls]")
    assert video.count() == 1
    if page.evaluate(H264) in ("probably", "maybe"):
        page.evaluate("document.querySelector('main video').load()")
        until(page, "document.querySelector('main video').readyState >= 2")
        assert page.evaluate("document.querySelector('main video').videoWidth") > 0
        assert page.evaluate("document.querySelector('main video').error") is None
    else:  # a Chromium without H.264: the player must still fetch its source successfully
        with page.expect_response(re.compile(rf"/media/{job_id}/0$")) as answer:
            page.evaluate("document.querySelector('main video').load()")
        assert answer.value.status in (200, 206)
    assert page.get_by_role("link", name=re.compile("Download clip")).count() == 1
    assert page.locator("ol.timeline li").count() >= 3
    page.screenshot(path=shots / "job.png", full_page=True)

    page.get_by_role("link", name="Usage").click()
    chart = page.locator("svg.chart")
    assert re.search(r"Your spend by day, 30 days, total \$\d", chart.get_attribute("aria-label"))
    assert page.locator("meter").count() >= 2
    page.screenshot(path=shots / "usage.png", full_page=True)


def test_an_admin_lowers_a_quota_and_the_users_next_generation_is_refused(people, server, shots):
    dave = people(server.token("dave"))
    boss = people(server.token(ADMIN))
    boss.page.get_by_role("link", name="Admin").click()
    boss.page.screenshot(path=shots / "admin-usage.png", full_page=True)
    boss.page.get_by_role("link", name="Limits & holds").click()
    boss.page.get_by_label("Scope", exact=True).select_option("account")
    boss.page.get_by_label(re.compile("^Account name")).fill("dave")
    boss.page.get_by_label("Daily budget (USD)").fill("0.01")
    boss.page.get_by_role("button", name="Save limits").click()
    assert "Limits of account dave saved: daily $0.01" in boss.page.get_by_role("status").inner_text()
    boss.page.screenshot(path=shots / "admin-limits.png", full_page=True)

    generate(dave.page, "a heron lifting off")
    alert = dave.page.get_by_role("alert")
    assert "costs $0.20, more than the whole daily limit of $0.01" in alert.inner_text()
    assert dave.page.get_by_label("Prompt").input_value() == "a heron lifting off"
    assert server.call(server.toolkit.engine.page, account="dave")[0] == []


def test_revoking_a_token_ends_its_browser_session(people, server, shots):
    boss = people(server.token(ADMIN))
    boss.page.goto(server.url + "/admin/accounts")
    boss.page.get_by_label("New account name").fill("carol")
    boss.page.get_by_role("button", name="Add account").click()
    boss.page.get_by_label("Account", exact=True).select_option("carol")
    boss.page.get_by_label("Label (to recognise it by)").fill("carol's laptop")
    boss.page.get_by_role("button", name="Create token").click()
    token = boss.page.get_by_label("Token", exact=True).input_value()
    assert token.startswith("vg_")
    boss.page.screenshot(path=shots / "admin-accounts.png", full_page=True)

    carol = people(token)
    assert carol.page.locator(".who").inner_text() == "carol"
    boss.page.goto(server.url + "/admin/accounts")
    boss.page.get_by_role("button", name=re.compile(r"Revoke token \w+ of carol")).click()
    assert "Token revoked" in boss.page.get_by_role("status").inner_text()

    carol.page.get_by_role("link", name="Usage").click()
    carol.page.wait_for_url(re.compile(r".*/login\?next=%2Fusage$"))
    assert carol.page.get_by_label("Account token").is_visible()
    boss.page.goto(server.url + "/admin/audit")
    assert boss.page.locator("td", has_text="token_revoke").count() >= 1
    boss.page.screenshot(path=shots / "admin-audit.png", full_page=True)


def test_a_non_admin_is_refused_on_admin_pages_and_the_phone_layout_fits(people, server, shots):
    erin = people(server.token("erin"), phone=True)
    assert erin.page.get_by_role("link", name="Admin").count() == 0
    for path in ("/admin", "/admin/limits", "/admin/accounts", "/admin/audit"):
        response = erin.page.goto(server.url + path)
        assert response.status == 403, path
        assert "admins only" in erin.page.get_by_role("alert").inner_text()
    erin.page.goto(server.url + "/")
    assert erin.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    erin.page.screenshot(path=shots / "gallery-phone.png", full_page=True)
    erin.page.goto(server.url + "/login")  # signed in: the login page sends you to the gallery
    assert erin.page.url == server.url + "/"
    guest = people()
    guest.page.goto(server.url + "/login")
    guest.page.screenshot(path=shots / "login.png")
    assert guest.page.evaluate("document.activeElement.id") == "token"  # the field to fill has the focus
    guest.page.keyboard.press("Tab")
    assert guest.page.evaluate("document.activeElement.textContent") == "Sign in"
    for expected in ("token", "brand", "skip"):  # back through the page: field, home link, skip link
        guest.page.keyboard.press("Shift+Tab")
        assert expected in (guest.page.evaluate("document.activeElement.id"),
                            guest.page.evaluate("document.activeElement.className"))


def test_a_missing_browser_skips_with_the_reason_unless_ci_requires_it(monkeypatch):
    """Guards the guard: the skip names the reason, and VIDEOGEN_REQUIRE_BROWSER=1 turns it into a failure."""
    monkeypatch.delenv("VIDEOGEN_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found.*apt-get install chromium"):
        no_browser("no Chromium found at /usr/bin/chromium or on PATH")
    monkeypatch.setenv("VIDEOGEN_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="VIDEOGEN_REQUIRE_BROWSER=1 but no Chromium"):
        no_browser("no Chromium found at /usr/bin/chromium or on PATH")
