"""Open a report in headless chromium and say what a reader would see.

A small DevTools-protocol client over ``--remote-debugging-pipe`` (no extra Python package): it
loads the page, waits for the plots to draw, and records console errors, uncaught exceptions,
JavaScript dialogs (an ``alert`` means injected script ran) and every network request that is not
to a local file (a report must open offline). Used by the tests and by ``astradup report check``.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astradup.errors import AstradupError

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")


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


class _Pipe:
    """DevTools protocol over the two pipes chromium opens as fds 3 (in) and 4 (out)."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int):
        self.proc = proc
        self.wfd = to_browser
        self.rfd = from_browser
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]
        return self.next_id

    def _read(self, timeout: float) -> dict[str, Any] | None:
        while b"\0" not in self.buf:
            ready, _, _ = select.select([self.rfd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise AstradupError("chromium closed the DevTools pipe (it crashed or exited)")
            self.buf += chunk
        raw, _, self.buf = self.buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        mid = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AstradupError(f"chromium did not answer {method} within {timeout:.0f} s")
            msg = self._read(left)
            if msg is None:
                continue
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AstradupError(f"chromium: {method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            msg = self._read(left)
            if msg is not None and "method" in msg:
                self.events.append(msg)


def find_chromium() -> str | None:
    """``$BROWSER_PATH``, else chromium/chrome on ``PATH``, else None."""
    env = os.environ.get("BROWSER_PATH", "").strip()
    if env and Path(env).is_file():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


_COUNT_JS = """(() => {
  const svgs = document.querySelectorAll('.js-plotly-plot .main-svg');
  const plots = new Set(); svgs.forEach(s => plots.add(s.closest('.js-plotly-plot')));
  return JSON.stringify({n_main_svg: svgs.length, n_plots: plots.size,
    n_divs: document.querySelectorAll('.plotly-graph-div').length,
    title: document.title, text: document.body ? document.body.innerText : ''});
})()"""


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

    Waits until every ``.plotly-graph-div`` has drawn (or ``timeout``), then ``settle`` seconds
    more for late errors.

    Raises:
        AstradupError: chromium is missing, fails to start, or the page does not load in time.
    """
    browser = chromium or find_chromium()
    if browser is None:
        raise AstradupError("no chromium found: apt-get install -y chromium (or set BROWSER_PATH)")
    url = Path(path).resolve().as_uri()
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="astradup-chromium-")
    log_path = Path(profile) / "chromium.log"
    # The pipes go in as stdin/stdout; the shell moves them to fds 3 and 4, where
    # --remote-debugging-pipe expects them (no fd-number collisions whatever os.pipe returned).
    cmd = [
        "/bin/sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null',
        browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
        "--remote-debugging-pipe", "about:blank",
    ]
    with open(log_path, "wb") as log_fh:
        proc = subprocess.Popen(cmd, stdin=to_r, stdout=from_w, stderr=log_fh)
    os.close(to_r)
    os.close(from_w)
    cdp = _Pipe(proc, to_w, from_r)
    result = PageCheck()
    try:
        try:
            cdp.call("Browser.getVersion", timeout=timeout)
        except AstradupError as exc:
            tail = log_path.read_text(errors="replace")[-800:] if log_path.exists() else ""
            raise AstradupError(f"{browser} did not start: {exc}. Its log ends: {tail}") from exc
        target = cdp.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        sid = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable", session=sid)
        cdp.call("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=sid)
        cdp.call("Page.navigate", {"url": url}, session=sid)
        deadline = time.monotonic() + timeout
        loaded = False
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            _handle_dialogs(cdp, sid)
            loaded = loaded or any(e.get("method") == "Page.loadEventFired" for e in cdp.events)
            if loaded:
                res = cdp.call("Runtime.evaluate", {"expression": _COUNT_JS, "returnByValue": True},
                               session=sid)
                state = json.loads(res.get("result", {}).get("value") or "{}")
                if state.get("n_plots", 0) >= state.get("n_divs", 0):
                    break
            cdp.pump(0.25)
        if not loaded:
            raise AstradupError(f"{path}: page did not finish loading within {timeout:.0f} s")
        cdp.pump(settle)
        _handle_dialogs(cdp, sid)
        res = cdp.call("Runtime.evaluate", {"expression": _COUNT_JS, "returnByValue": True}, session=sid)
        state = json.loads(res.get("result", {}).get("value") or "{}")
        result.title = state.get("title", "")
        result.text = state.get("text", "")
        result.n_plots = int(state.get("n_plots", 0))
        result.n_main_svg = int(state.get("n_main_svg", 0))
        if screenshot:
            shot = cdp.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=sid, timeout=timeout)
            result.screenshot = base64.b64decode(shot["data"])
        _collect(cdp.events, result)
        return result
    finally:
        try:
            cdp.send("Browser.close")
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - closing is best effort; kill below
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(to_w)
        os.close(from_r)
        shutil.rmtree(profile, ignore_errors=True)


def _handle_dialogs(cdp: _Pipe, sid: str) -> None:
    for ev in cdp.events:
        if ev.get("method") == "Page.javascriptDialogOpening" and not ev.get("_handled"):
            ev["_handled"] = True
            cdp.send("Page.handleJavaScriptDialog", {"accept": True}, session=sid)


def _collect(events: list[dict[str, Any]], out: PageCheck) -> None:
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.exceptions.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.console_errors.append(f"{e.get('source', '')}: {e.get('text', '')} {e.get('url', '')}".strip())
        elif m == "Page.javascriptDialogOpening":
            out.dialogs.append(f"{p.get('type', 'dialog')}: {p.get('message', '')}")
        elif m == "Network.requestWillBeSent":
            u = p.get("request", {}).get("url", "")
            if u and not u.startswith(LOCAL_SCHEMES):
                out.external_requests.append(u)
