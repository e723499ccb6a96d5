"""Helpers for the service tests: a real uvicorn server on a free loopback port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``with LiveServer(settings) as srv: httpx.get(srv.url + "/health")``; stops on exit."""

    def __init__(self, settings, wait_ready: bool = True, timeout: float = 120.0):
        import uvicorn

        from astradup.service import create_app

        self.settings = replace(settings, host="127.0.0.1", port=free_port())
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.settings.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.settings.port}"
        self.wait_ready = wait_ready
        self.timeout = timeout

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        if self.wait_ready:
            self.until_ready()
        return self

    def until_ready(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            r = httpx.get(self.url + "/ready", timeout=30)
            if r.status_code == 200:
                return r.json()
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {self.timeout} s: {r.text}")
            time.sleep(0.2)

    @property
    def state(self):
        return self.app.state.astradup

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
