"""Open a report in headless chromium (Selenium with Debian's chromedriver) and say what a reader
would see.

It loads the page, waits for the plots to draw, and records console errors, uncaught exceptions,
JavaScript dialogs (an ``alert`` means injected script ran) and every network request that is not
to a local file (a report must open offline). Nothing is downloaded: the browser and its driver
are Debian's ``chromium`` and ``chromium-driver`` (or ``$BROWSER_PATH`` and ``$CHROMEDRIVER_PATH``).

Example:
    >>> page = check_page("reports/latest/04_evaluation_report.html")  # doctest: +SKIP
    >>> page.ok, page.n_plots                                           # doctest: +SKIP
    (True, 9)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astradup.errors import AstradupError
from astradup.report.render import find_chromium

__all__ = ["PageCheck", "check_page", "find_chromedriver", "find_chromium"]

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")

# Runs before any script of the page: dialogs are recorded and answered instead of blocking.
_RECORD_DIALOGS_JS = """
window.__astradupDialogs = [];
for (const kind of ['alert', 'confirm', 'prompt']) {
  window[kind] = (msg) => { window.__astradupDialogs.push(kind + ': ' + String(msg)); return kind === 'confirm' ? true : ''; };
}
"""
_COUNT_JS = """
const svgs = document.querySelectorAll('.js-plotly-plot .main-svg');
const plots = new Set(); svgs.forEach(s => plots.add(s.closest('.js-plotly-plot')));
return JSON.stringify({n_main_svg: svgs.length, n_plots: plots.size,
  n_divs: document.querySelectorAll('.plotly-graph-div').length,
  title: document.title, text: document.body ? document.body.innerText : '',
  dialogs: window.__astradupDialogs || []});
"""


@dataclass
class PageCheck:
    """What loading a page showed.

    Attributes:
        title: ``document.title``.
        n_plots: drawn plotly plots (``.js-plotly-plot .main-svg`` elements' parent plots).
        n_main_svg: ``.js-plotly-plot .main-svg`` elements (two or three per drawn plot).
        text: ``document.body.innerText`` (what a reader can read).
        console_errors: console ``error`` messages and browser log errors.
        exceptions: uncaught JavaScript exceptions.
        dialogs: ``alert``/``confirm``/``prompt`` messages (each means script ran that should not).
        external_requests: URLs requested that are not local files or data.
        screenshot: PNG bytes when asked for.
    """

    title: str = ""
    n_plots: int = 0
    n_main_svg: int = 0
    text: str = ""
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    screenshot: bytes | None = None

    @property
    def ok(self) -> bool:
        return not (self.console_errors or self.exceptions or self.dialogs or self.external_requests)


def find_chromedriver() -> str | None:
    """``$CHROMEDRIVER_PATH``, else ``chromedriver`` on ``PATH`` (Debian's chromium-driver), else None."""
    given = os.environ.get("CHROMEDRIVER_PATH", "").strip()
    if given and Path(given).is_file():
        return given
    return shutil.which("chromedriver")


def _driver(browser: str, driver_path: str, width: int, height: int) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)


def _collect_logs(driver: Any, out: PageCheck) -> None:
    for entry in driver.get_log("browser"):
        if entry.get("level") != "SEVERE":
            continue
        msg = str(entry.get("message", ""))
        (out.exceptions if "Uncaught" in msg else out.console_errors).append(msg)
    for entry in driver.get_log("performance"):
        ev = json.loads(entry.get("message", "{}")).get("message", {})
        if ev.get("method") == "Network.requestWillBeSent":
            url = ev.get("params", {}).get("request", {}).get("url", "")
            if url and not url.startswith(LOCAL_SCHEMES) and url not in out.external_requests:
                out.external_requests.append(url)


def check_page(
    path: str | os.PathLike[str],
    *,
    chromium: str | None = None,
    timeout: float = 60.0,
    settle: float = 1.0,
    screenshot: bool = False,
    width: int = 1280,
    height: int = 900,
) -> PageCheck:
    """Load a local HTML file in headless chromium and report what happened.

    Waits until every ``.plotly-graph-div`` has drawn (or ``timeout`` seconds), then ``settle``
    seconds more for late errors.

    Raises:
        AstradupError: chromium or chromedriver is missing or fails to start, or the page does not
            load in time.
    """
    browser = chromium or find_chromium()
    driver_path = find_chromedriver()
    if browser is None or driver_path is None:
        raise AstradupError("no chromium/chromedriver found: apt-get install -y chromium chromium-driver "
                            "(or set BROWSER_PATH and CHROMEDRIVER_PATH)")
    from selenium.common.exceptions import WebDriverException

    try:
        driver = _driver(browser, driver_path, width, height)
    except WebDriverException as exc:
        raise AstradupError(f"{browser} did not start through {driver_path}: {exc.msg}") from exc
    result = PageCheck()
    try:
        driver.set_page_load_timeout(timeout)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _RECORD_DIALOGS_JS})
        try:
            driver.get(Path(path).resolve().as_uri())
        except WebDriverException as exc:
            raise AstradupError(f"{path}: page did not finish loading within {timeout:.0f} s ({exc.msg})") from exc
        deadline = time.monotonic() + timeout
        state = json.loads(driver.execute_script(_COUNT_JS))
        while state["n_plots"] < state["n_divs"] and time.monotonic() < deadline:
            time.sleep(0.25)
            state = json.loads(driver.execute_script(_COUNT_JS))
        time.sleep(settle)
        state = json.loads(driver.execute_script(_COUNT_JS))
        result.title, result.text = state["title"], state["text"]
        result.n_plots, result.n_main_svg = int(state["n_plots"]), int(state["n_main_svg"])
        result.dialogs = list(state["dialogs"])
        if screenshot:
            import base64

            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            result.screenshot = base64.b64decode(shot["data"])
        _collect_logs(driver, result)
        return result
    finally:
        driver.quit()
