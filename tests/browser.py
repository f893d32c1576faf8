"""Open a page in headless Chromium and ask it questions: the Chrome DevTools Protocol over
a pipe (`--remote-debugging-pipe`: JSON messages ending in NUL on file descriptors 3 and 4),
with the standard library only.

Debian's `chromium` is installed by scripts/setup.sh when missing (as root). The flags are
those that work on a machine with no network: no background or component traffic.
"""

from __future__ import annotations

import base64
import contextlib
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

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a container's /dev/shm is 64 MiB: Chromium may crash in it
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1400,1000",
)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Browser:
    """One headless Chromium with one page; events are kept in `events`."""

    process: subprocess.Popen[bytes]
    writer: Any
    reader: Any
    profile: str
    session: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    _buffer: bytes = b""
    _next_id: int = 0

    @staticmethod
    def start(executable: str) -> Browser:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        profile = tempfile.mkdtemp(prefix="sluiceway-chromium-")

        def wire() -> None:  # in the child: the pipe ends Chromium expects
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            pass_fds=(3, 4),
            preexec_fn=wire,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        browser = Browser(
            process, os.fdopen(to_chrome_w, "wb"), os.fdopen(from_chrome_r, "rb", 0), profile
        )
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        browser.session = browser.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        return browser

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer; events read meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self.writer.write(json.dumps(message).encode() + b"\0")
        self.writer.flush()
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def _read(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next message; a Chromium that hangs fails the test instead of the whole run."""
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            ready, _, _ = select.select(
                [self.reader], [], [], max(0.0, deadline - time.monotonic())
            )
            if not ready:
                raise TimeoutError(f"chromium sent nothing for {timeout}s")
            chunk = os.read(self.reader.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def open(self, url: str, timeout: float = 20.0) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {timeout}s")
            self.events.append(self._read())

    def evaluate(self, expression: str) -> Any:
        """A JavaScript expression's value (JSON-able)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and log entries of level error."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')}")
        return found

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # it may be gone already
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.writer.close()
        self.reader.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# What a test asks the page: nodes by kind, and the drawn size of every chart and bar.
PAGE_FACTS = """(() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  const nodes = {};
  document.querySelectorAll('#graph .node').forEach((n) => {
    const kind = n.classList[1];
    (nodes[kind] = nodes[kind] || []).push(n.getAttribute('data-id').split(':')[1]);
  });
  return {
    nodes: nodes,
    node_boxes: [...document.querySelectorAll('#graph .node rect')].map(box),
    edges: document.querySelectorAll('#graph .edge').length,
    charts: [...document.querySelectorAll('svg.chart')].map(box),
    bars: [...document.querySelectorAll('svg.chart rect.bar')].map(box),
    cards: [...document.querySelectorAll('section.card')].map((c) => c.id),
    scripts_with_src: document.querySelectorAll('script[src]').length,
    stylesheets: document.querySelectorAll('link[rel=stylesheet]').length,
  };
})()"""
