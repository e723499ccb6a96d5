"""The review page in headless Chromium (Selenium + Debian's chromium-driver), against the real
server: a key press records a decision in the store, and a hostile file name shows as text."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from astradup.service import ServiceSettings
from tests.conftest import HOSTILE_NAME
from tests.service_util import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


def test_keyboard_decision_lands_in_the_store_and_names_are_escaped(service_store, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from astradup.review import decisions

    store = tmp_path / "lib.duckdb"
    shutil.copy(service_store, store)
    with LiveServer(ServiceSettings(store=store, allow_review=True)) as srv:
        browser.get(srv.url + "/")
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".pair"))
        names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".pair .name")]
        assert HOSTILE_NAME in names  # shown as text ...
        assert browser.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0  # ... not markup
        first = browser.find_element(By.CSS_SELECTOR, ".pair.current")
        a, b = [e.text for e in first.find_elements(By.CSS_SELECTOR, ".name")]
        imgs = first.find_elements(By.TAG_NAME, "img")
        WebDriverWait(browser, 60).until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs))
        browser.find_element(By.TAG_NAME, "body").send_keys("d")
        WebDriverWait(browser, 60).until(lambda d: "recorded duplicate" in d.find_element(By.ID, "status").text)
        deadline = time.monotonic() + 30
        while True:
            with srv.state.access.open() as st:
                got = decisions(st)
            if len(got) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(got) == 1
        row = got.iloc[0]
        assert row["decision"] == "duplicate" and {row["a"], row["b"]} == {a, b}
        bad = httpx.post(srv.url + "/decide", json={"a": "nope.mp4", "b": a, "decision": "duplicate"})
        assert bad.status_code == 400 and "nope.mp4" in bad.json()["detail"]
        bad = httpx.post(srv.url + "/decide", json={"a": a, "b": b, "decision": "maybe"})
        assert bad.status_code == 400
