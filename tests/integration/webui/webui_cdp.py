"""Just enough of the Chrome DevTools protocol to drive Debian's headless Chromium from a test.

No browser download and no driver package: Chromium is started with --remote-debugging-port=0,
its page target is reached over a websocket (the `websockets` package), and the test sends
CDP commands (Page.navigate, Runtime.evaluate, Page.captureScreenshot). JavaScript dialogs
(the cancel button's confirm) are accepted as they open.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000", "--remote-debugging-port=0",
]


def find_or_install_chromium() -> str:
    """Debian's chromium, installed with apt when missing (CI machines start without it)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("chromium is not installed and this user cannot apt-get install it; "
                           "run: apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env, capture_output=True)
    found = shutil.which("chromium")
    if not found:
        raise RuntimeError("apt-get installed chromium but it is not on PATH")
    return found


class Browser:
    """One headless Chromium with a fresh profile; `page()` opens a tab to drive."""

    def __init__(self, executable: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="squall-chromium-")
        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.devtools_port = self._wait_for_devtools()

    def _wait_for_devtools(self, timeout_s: float = 30) -> int:
        assert self._process.stderr is not None
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                return int(match.group(1))
        self.close()
        raise RuntimeError("chromium did not start its DevTools endpoint:\n" + "".join(seen[-20:]))

    def page(self) -> Page:
        request = urllib.request.Request(f"http://127.0.0.1:{self.devtools_port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:
            target = json.load(answer)
        return Page(target["webSocketDebuggerUrl"])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    """A tab: send commands, wait for load events, evaluate JavaScript, take screenshots."""

    def __init__(self, websocket_url: str) -> None:
        self._exit = ExitStack()
        self._ws: ClientConnection = self._exit.enter_context(connect(websocket_url, max_size=None, open_timeout=10))
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.dialogs: list[str] = []
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, timeout_s: float = 30, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        command_id = self._next_id
        self._ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self._on_event(message)

    def _on_event(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Page.javascriptDialogOpening":
            self.dialogs.append(message["params"]["message"])
            # answer without waiting: the page's script is blocked until the dialog closes
            self._next_id += 1
            self._ws.send(json.dumps({"id": self._next_id, "method": "Page.handleJavaScriptDialog",
                                      "params": {"accept": True}}))
        self.events.append(message)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 15) -> Any:
        """Poll a JavaScript expression until it is truthy (navigations in between are fine)."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
                if value:
                    return value
            except RuntimeError as exc:  # the page was replaced mid-evaluation
                last_error = exc
            time.sleep(0.1)
        raise TimeoutError(f"timed out waiting for {expression!r} (last error: {last_error})")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._exit.close()
