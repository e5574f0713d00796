"""A tiny Marionette client: drives Debian's headless ``firefox-esr`` without geckodriver.

Marionette speaks length-prefixed JSON over TCP (``LEN:JSON``): after a hello from the browser, each
command is ``[0, id, "Name", params]`` and its answer ``[1, id, error, result]``. Only what the web
tests use is here: a session, navigation, scripts, and element click / send keys. Every call has a
timeout, and :meth:`Firefox.close` kills the browser's whole process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
ENTER = "\ue007"

#: A fake camera and microphone without asking, autoplay with sound, and nothing that phones home.
PREFS: dict[str, Any] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reporting.enabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.enabled": False,
    "app.update.auto": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
}


class MarionetteError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Firefox:
    """``firefox-esr --headless --marionette`` in a fresh profile, and one Marionette session."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="tuichat-firefox-"))
        self.port = _free_port()
        prefs = {**PREFS, "marionette.port": self.port}
        (self.profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()))
        self.log = (self.profile / "firefox.log").open("wb")
        env = {**os.environ, "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"}
        self.proc = subprocess.Popen(
            [FIREFOX, "--headless", "--marionette", "--no-remote", "--profile", str(self.profile)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.sock: socket.socket | None = None
        self._buffer = b""
        self._next = 0
        try:
            self._connect(timeout)
            self.command("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise MarionetteError(f"firefox exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise MarionetteError(f"no Marionette on port {self.port} in {timeout:g} s: "
                                          f"{self.log_tail()}") from None
                time.sleep(0.1)
        hello = self._receive(timeout)
        if hello.get("marionetteProtocol") != 3:
            raise MarionetteError(f"unexpected Marionette hello: {hello}")

    def _receive(self, timeout: float) -> Any:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        while True:
            head, colon, rest = self._buffer.partition(b":")
            if colon and len(rest) >= int(head):
                self._buffer = rest[int(head):]
                return json.loads(rest[:int(head)])
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MarionetteError(f"Marionette closed the connection: {self.log_tail()}")
            self._buffer += chunk

    def command(self, name: str, params: dict[str, Any] | None = None, timeout: float = 20.0) -> Any:
        assert self.sock is not None
        self._next += 1
        body = json.dumps([0, self._next, name, params or {}]).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body)
        while True:
            kind, msgid, error, result = self._receive(timeout)
            if kind == 1 and msgid == self._next:
                break
        if error:
            raise MarionetteError(f"{name}: {error.get('error')}: {error.get('message')}")
        return result.get("value") if isinstance(result, dict) and set(result) == {"value"} else result

    # --- what tests use ------------------------------------------------------------------------------

    def navigate(self, url: str) -> None:
        self.command("WebDriver:Navigate", {"url": url})

    def js(self, body: str, *args: Any) -> Any:
        """Run a function body (``return ...``) in the page itself (not a sandbox), so it sees the
        page's globals; Marionette runs it privileged, the page's CSP does not apply."""
        return self.command("WebDriver:ExecuteScript", {"script": body, "args": list(args), "sandbox": None})

    def find(self, css: str) -> str:
        found = self.command("WebDriver:FindElement", {"using": "css selector", "value": css})
        return str(found[ELEMENT])

    def click(self, css: str) -> None:
        self.command("WebDriver:ElementClick", {"id": self.find(css)})

    def type(self, css: str, text: str) -> None:
        self.command("WebDriver:ElementSendKeys", {"id": self.find(css), "text": text})

    def log_tail(self, lines: int = 8) -> str:
        with contextlib.suppress(OSError):
            return " | ".join((self.profile / "firefox.log").read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError, MarionetteError, ValueError):
                self.command("Marionette:Quit", {"flags": ["eForceQuit"]}, timeout=3)
            self.sock.close()
            self.sock = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
