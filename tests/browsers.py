"""Real headless browsers for the HTML QA page tests.

- Chromium through selenium and the Debian chromium-driver, with a fresh profile
  and no background networking.
- Firefox ESR through its own Marionette protocol (Debian has no geckodriver and
  the network is off): a minimal client speaking the length-prefixed JSON
  messages ``[0, id, command, params]`` -> ``[1, id, error, result]``.

Both skip when the browser is missing, and fail under ``CI=true`` (the CI
setup script installs them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FIREFOX = "/usr/bin/firefox-esr"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def _missing(what: str, hint: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {what} is missing; run .ci/install_chromium.sh")
    pytest.skip(f"{what} not installed ({hint})")


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1800) -> Iterator[Any]:
    """A selenium Chrome driver on Debian chromium (fresh ``--user-data-dir``)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        _missing("chromium/chromium-driver", "Debian packages chromium, chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="netlm-chromium-")
    opts = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(240)
    driver.set_script_timeout(240)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.auto": False,
    "app.update.disabledForTesting": True,
    "extensions.update.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.newtabpage.enabled": False,
    "remote.prefs.recommended": True,
}


class Marionette:
    """Minimal Marionette client (enough for navigate, script, element screenshot)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.msg_id = 0
        self.hello = self._read()

    def _read(self) -> Any:
        buf = b""
        while b":" not in buf:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("marionette closed the connection")
            buf += chunk
        size_text, rest = buf.split(b":", 1)
        size = int(size_text)
        data = rest
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("marionette closed the connection")
            data += chunk
        return json.loads(data)

    def send(self, command: str, params: dict[str, Any] | None = None) -> Any:
        self.msg_id += 1
        body = json.dumps([0, self.msg_id, command, params or {}]).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body)
        while True:
            msg = self._read()
            if msg[0] == 1 and msg[1] == self.msg_id:
                if msg[2]:
                    raise RuntimeError(f"marionette {command}: {msg[2]}")
                return msg[3]

    def navigate(self, url: str) -> None:
        self.send("WebDriver:Navigate", {"url": url})

    def execute(self, script: str, *args: Any) -> Any:
        return self.send("WebDriver:ExecuteScript", {"script": script, "args": list(args)})["value"]

    def find(self, css: str) -> str:
        return str(self.send("WebDriver:FindElement", {"using": "css selector", "value": css})["value"][_ELEMENT])

    def click(self, css: str) -> None:
        self.send("WebDriver:ElementClick", {"id": self.find(css)})

    def send_keys(self, css: str, text: str) -> None:
        self.send("WebDriver:ElementSendKeys", {"id": self.find(css), "text": text})

    def element_png(self, css: str) -> bytes:
        shot = self.send("WebDriver:TakeScreenshot", {"id": self.find(css), "full": False, "hash": False})
        return base64.b64decode(shot["value"])


@contextlib.contextmanager
def firefox(width: int = 1400, height: int = 1800) -> Iterator[Marionette]:
    """Headless firefox-esr with a fresh profile, driven over Marionette on a loopback port."""
    if not Path(FIREFOX).exists():
        _missing("firefox-esr", "Debian package firefox-esr")
    profile = Path(tempfile.mkdtemp(prefix="netlm-firefox-"))
    port = _free_port()
    prefs = {**_FIREFOX_PREFS, "marionette.port": port}
    (profile / "user.js").write_text(
        "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())
    )
    env = {**os.environ, "MOZ_HEADLESS": "1", "MOZ_HEADLESS_WIDTH": str(width), "MOZ_HEADLESS_HEIGHT": str(height)}
    proc = subprocess.Popen(
        [FIREFOX, "--headless", "--marionette", "--no-remote", "-profile", str(profile), "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=240)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"firefox-esr did not open marionette on port {port}") from None
                time.sleep(0.5)
        with sock:
            client = Marionette(sock)
            client.send("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {"pageLoadStrategy": "normal"}}})
            client.send("WebDriver:SetTimeouts", {"pageLoad": 240000, "script": 240000})
            client.send("WebDriver:SetWindowRect", {"width": width, "height": height})
            try:
                yield client
            finally:
                with contextlib.suppress(Exception):
                    client.send("Marionette:Quit", {"flags": ["eForceQuit"]})
    finally:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
