"""The demo's web chat page and the admin page, driven by headless Chromium.

The demo (fake Mattermost + bot + HTTP surface) runs in-process in this test's trio loop;
selenium is blocking, so every browser step runs in a worker thread
(``trio.to_thread.run_sync``) while the loop keeps serving the pages and the bot.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``); without them the tests fail, they do not skip. Each run rewrites
``docs/screenshots/webchat.png`` and ``docs/screenshots/admin.png``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from mchat_actors.demo import run_demo

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The committed screenshots are refreshed only on request (MCHAT_UPDATE_SCREENSHOTS=1), so a
# test run leaves the work tree clean; otherwise they go to a temporary folder.
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
               if os.environ.get("MCHAT_UPDATE_SCREENSHOTS") else
               Path(tempfile.gettempdir()) / "mchat-screenshots")
WAIT_S = 20
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
)

T = TypeVar("T")


def _require_binaries() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"browser tests need {' and '.join(missing)}: "
                    "apt-get install -y chromium chromium-driver", pytrace=False)


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile; always quit, profile always removed.

    A sync fixture: it starts before and ends after the test's trio loop, so its blocking
    start and quit never stall the demo.
    """
    _require_binaries()
    profile = tempfile.mkdtemp(prefix="mchat-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    drv = None
    try:
        # An explicit driver path: selenium-manager is never asked to download anything.
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        drv.set_page_load_timeout(WAIT_S)
        yield drv
    finally:
        if drv is not None:
            drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """``mchat-actors demo`` in-process on free ports; its scripted conversation has run."""
    args = argparse.Namespace(port=0, http_port=0, db=str(tmp_path / "demo.db"))
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(run_demo, args)
        yield urls
        nursery.cancel_scope.cancel()


async def step(fn: Callable[..., T], *args: Any) -> T:
    """Run one blocking selenium step in a worker thread."""
    return await trio.to_thread.run_sync(partial(fn, *args))


async def wait_for(drv: WebDriver, condition: Callable[[WebDriver], T], what: str) -> T:
    """An explicit wait (up to WAIT_S) in a worker thread; re-rendered elements are retried."""
    wait = WebDriverWait(drv, WAIT_S, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,))
    return await step(wait.until, condition, f"timed out after {WAIT_S} s waiting for {what}")


def _screenshot(drv: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    assert drv.save_screenshot(str(path)), f"could not save {path}"
    return path


# ---------------------------------------------------------------------- web chat page


def _posts(drv: WebDriver) -> list[tuple[str, str, str]]:
    """(data-user, text, class) of every post on the page."""
    return [(p.get_attribute("data-user") or "", p.find_element(By.CSS_SELECTOR, ".text").text,
             p.get_attribute("class") or "")
            for p in drv.find_elements(By.CSS_SELECTOR, "#messages div.post")]


def _choose_channel(drv: WebDriver, label: str) -> None:
    select = Select(drv.find_element(By.ID, "channel"))
    select.select_by_visible_text(label)


def _send(drv: WebDriver, text: str) -> None:
    box = drv.find_element(By.ID, "message")
    box.clear()
    box.send_keys(text)
    drv.find_element(By.ID, "send").click()


async def test_chat_page_remember_then_ask_gets_the_bots_answer(driver, demo):
    await step(driver.get, demo["chat"])
    await wait_for(driver, lambda d: any(
        o.text == "# Town Square" for o in Select(d.find_element(By.ID, "channel")).options),
        "the channel list")
    await step(_choose_channel, driver, "# Town Square")
    # the composer works only once the page has read the seed and chosen the user
    await wait_for(driver, lambda d: Select(d.find_element(By.ID, "user"))
                   .first_selected_option.get_attribute("value") == "kim", "user kim")

    await step(_send, driver, "/remember X부품 불량률 12%")
    await wait_for(driver, lambda d: any(
        t == "/remember X부품 불량률 12%" and u != "bot" for u, t, _ in _posts(d)),
        "the /remember post")
    # the bot's acknowledgement of /remember, so the memory is stored before the question
    await wait_for(driver, lambda d: any(u == "bot" for u, _, _ in _posts(d)),
                   "the bot's acknowledgement of /remember")
    before = await wait_for(driver, lambda d: [p for p in _posts(d) if p[0] == "bot"],
                            "the bot's posts so far")

    await step(_send, driver, "@ai 오늘 X부품 불량률 몇 %야?")
    await wait_for(driver, lambda d: any(
        t == "@ai 오늘 X부품 불량률 몇 %야?" for _, t, _ in _posts(d)), "the question")
    answer = await wait_for(driver, lambda d: next(
        (p for p in _posts(d) if p[0] == "bot" and "12%" in p[1] and p not in before), False),
        "a bot post with 12%")
    assert "reply" in answer[2].split(), f"the answer is not threaded under the question: {answer}"
    assert "시작 실패" not in await step(lambda: driver.find_element(By.ID, "status").text)

    path = await step(_screenshot, driver, "webchat.png")
    assert path.stat().st_size > 10_000


# ---------------------------------------------------------------------- admin page


def _channel_rows(drv: WebDriver) -> dict[str, dict[str, Any]]:
    """The Channels table: channel id -> {name, checked} (rows with a sync checkbox only)."""
    rows = {}
    for tr in drv.find_elements(By.CSS_SELECTOR, "#channels tbody tr"):
        boxes = tr.find_elements(By.CSS_SELECTOR, "input[type=checkbox]")
        if not boxes:
            continue
        cells = tr.find_elements(By.TAG_NAME, "td")
        rows[cells[0].text] = {"name": cells[1].text, "checked": boxes[0].is_selected()}
    return rows


def _click_sync(drv: WebDriver, channel_id: str) -> None:
    """Click the sync checkbox of ``channel_id``'s row (re-found if the table re-renders)."""
    def click(d: WebDriver) -> bool:
        for tr in d.find_elements(By.CSS_SELECTOR, "#channels tbody tr"):
            if tr.find_element(By.TAG_NAME, "td").text == channel_id:
                tr.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
                return True
        return False
    WebDriverWait(drv, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(click)


async def test_admin_page_login_shows_mappings_and_toggles_sync(driver, demo):
    await step(driver.set_window_size, 1280, 1500)
    await step(driver.get, demo["admin"])
    token_box = await wait_for(driver, lambda d: (e := d.find_element(By.ID, "token"))
                               .is_displayed() and e, "the token prompt")
    await step(token_box.send_keys, demo["admin_token"])
    await step(driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click)

    await wait_for(driver, lambda d: d.find_element(By.ID, "main").is_displayed(), "the main view")
    await wait_for(driver, lambda d: d.find_element(By.ID, "conn").text == "websocket",
                   "the connection badge")
    rows = await wait_for(driver, lambda d: _channel_rows(d) or False, "channel mappings")
    # the scripted conversation ran in ~quality, so its mapping is there and synced
    quality = next((cid for cid, r in rows.items() if r["name"] == "품질 Quality"), None)
    assert quality is not None, f"no mapping for ~quality: {rows}"
    assert rows[quality]["checked"]

    await step(_click_sync, driver, quality)
    await wait_for(driver, lambda d: _channel_rows(d).get(quality, {}).get("checked") is False,
                   "the sync toggle to show off")
    # the page's own refresh (act() re-reads the lists) still shows it off: the server agrees
    async with httpx.AsyncClient() as client:
        api = demo["admin"].removesuffix("/admin") + "/api/v1/mchat/mappings/channels"
        res = await client.get(api, headers={"Authorization": f"Bearer {demo['admin_token']}"})
        res.raise_for_status()
        by_id = {c["mchat_channel_id"]: c for c in res.json()["channels"]}
        # the list returns the SQLite column as it is stored (0/1), the PUT answers a bool
        assert by_id[quality]["sync_enabled"] is False
        assert all(c["sync_enabled"] is True for cid, c in by_id.items() if cid != quality)
    await wait_for(driver, lambda d: "sync" in d.find_element(By.ID, "audit").text.lower(),
                   "the toggle in the audit log")
    await wait_for(driver, lambda d: d.find_element(By.ID, "c-messages").text not in ("", "–"),
                   "the counters")
    await wait_for(driver, lambda d: d.find_element(By.ID, "c-capped").text == "0 capped",
                   "the loop guard card")
    assert not driver.find_element(By.ID, "warnings").is_displayed()  # TLS verified: no warning

    source = await step(lambda: driver.page_source)
    assert demo["admin_token"] not in source
    assert demo["bot_token"] not in source
    stored = await step(driver.execute_script,
                        "return sessionStorage.getItem('mchat-admin-token')")
    assert stored == demo["admin_token"]

    path = await step(_screenshot, driver, "admin.png")
    assert path.stat().st_size > 10_000


def _memory_rows(drv: WebDriver) -> list[tuple[str, str, str]]:
    """(id, state, memory) of the Memories table's rows."""
    rows = []
    for tr in drv.find_elements(By.CSS_SELECTOR, "#memories tbody tr"):
        cells = tr.find_elements(By.TAG_NAME, "td")
        if len(cells) >= 3:
            rows.append((cells[0].text, cells[1].text, cells[2].text))
    return rows


def _click_in_memory_row(drv: WebDriver, memory_id: str, label: str) -> None:
    def click(d: WebDriver) -> bool:
        for tr in d.find_elements(By.CSS_SELECTOR, "#memories tbody tr"):
            if tr.find_element(By.TAG_NAME, "td").text == memory_id:
                for button in tr.find_elements(By.TAG_NAME, "button"):
                    if button.text == label:
                        button.click()
                        return True
        return False
    WebDriverWait(drv, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(click)


async def test_admin_page_memories_history_forget_and_restore(driver, demo):
    """The demo's /remember shows in Memories; its history names kim; Forget hides it from the
    current list (the API agrees), Restore brings it back."""
    await step(driver.get, demo["admin"])
    if await step(lambda: driver.find_element(By.ID, "token").is_displayed()):
        await step(driver.find_element(By.ID, "token").send_keys, demo["admin_token"])
        await step(driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click)
    rows = await wait_for(driver, lambda d: [r for r in _memory_rows(d)
                                             if r[2] == "X부품 불량률 12%"] or False,
                          "the demo's memory in the Memories table")
    memory_id = rows[0][0]
    await step(_click_in_memory_row, driver, memory_id, "History")
    await wait_for(driver, lambda d: "X부품 불량률 12%" in d.find_element(By.ID, "memory-history")
                   .text and "created" in d.find_element(By.ID, "memory-history").text,
                   "the memory's history")
    await step(_click_in_memory_row, driver, memory_id, "Forget")
    await wait_for(driver, lambda d: all(r[0] != memory_id for r in _memory_rows(d)),
                   "the forgotten memory to leave the current list")
    api = demo["admin"].removesuffix("/admin") + "/api/v1/mchat/memories"
    headers = {"Authorization": f"Bearer {demo['admin_token']}"}
    async with httpx.AsyncClient() as client:
        res = await client.get(api, params={"state": "forgotten"}, headers=headers)
        assert memory_id in [m["id"] for m in res.json()["memories"]]
    await step(lambda: Select(driver.find_element(By.ID, "memory-state"))
               .select_by_value("forgotten"))
    await step(driver.find_element(By.CSS_SELECTOR, "#memory-form button[type=submit]").click)
    await wait_for(driver, lambda d: any(r[0] == memory_id for r in _memory_rows(d)),
                   "the memory in the forgotten list")
    await step(_click_in_memory_row, driver, memory_id, "Restore")
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            res = await client.get(api, params={"state": "current"}, headers=headers)
            if memory_id in [m["id"] for m in res.json()["memories"]]:
                break
            await trio.sleep(0.1)
        else:
            raise AssertionError("the memory was not restored")
