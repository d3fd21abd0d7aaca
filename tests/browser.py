"""Headless Chromium driven through the DevTools protocol on a pipe: no port, no network."""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium")


class Chromium:
    """Headless Chromium driven through the DevTools protocol on a pipe (no port, no network)."""

    def __init__(self, downloads: Path, offline: bool = False):
        self.profile = tempfile.mkdtemp(prefix="convae-chromium-")
        to_browser, self.commands = os.pipe()
        self.replies, from_browser = os.pipe()
        # Chromium reads fd 3 and writes fd 4: move our ends above 4 before placing them there.
        child_in = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
        os.close(to_browser)
        os.close(from_browser)

        def place_pipes():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        # Offline: in a network namespace of its own (as root), where nothing but loopback exists.
        isolate = ["unshare", "--net"] if offline and os.geteuid() == 0 and shutil.which("unshare") else []
        if offline and not isolate:
            raise RuntimeError("an offline browser needs root and unshare (a network namespace of its own)")
        self.process = subprocess.Popen(
            [*isolate, CHROMIUM, "--headless", "--no-sandbox", "--remote-debugging-pipe", "--no-first-run"]
            + ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
            + [f"--user-data-dir={self.profile}", "about:blank"],
            pass_fds=(3, 4, child_in, child_out),
            preexec_fn=place_pipes,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self.last_id, self.buffer, self.session = 0, b"", None
        self.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))

    def send(self, method: str, **params):
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.replies, 1 << 16)
                assert chunk, "chromium exited"
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.last_id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def open(self, path: Path) -> None:
        url = path.as_uri()
        target = self.send("Target.createTarget", url=url)["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        # A new tab holds an empty, "complete" document until the file's has replaced it.
        loaded = f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
        wait_until(lambda: self.evaluate(loaded))

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self.commands)
        os.close(self.replies)
        shutil.rmtree(self.profile, ignore_errors=True)

    def screenshot(self, path: Path, width: int = 1100, height: int = 1800) -> Path:
        """A PNG of the open page at this size (for a person to look at)."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def wait_until(condition, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value
