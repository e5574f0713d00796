"""The web client: its pages and headers, and a real headless Chromium in a call with a terminal peer."""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.resources
import itertools
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import numpy as np
import pytest

from tests.conftest import Recorder, free_port, wait_until
from tests.test_call import Peer, Peers, peers  # noqa: F401  (fixture)
from tuichat.client import RoomEvent, Session
from tuichat.client.call import Call
from tuichat.client.stream import PlayStatus
from tuichat.errors import CommandFailed
from tuichat.media import AudioDrain, TestPatternTrack
from tuichat.protocol.codec import decode_server_message, encode
from tuichat.protocol.messages import ErrorCode, ParticipantInfo, State
from tuichat.server import RoomServer, ServerLimits
from tuichat.server import room as room_module
from tuichat.server.web import CONTENT_SECURITY_POLICY, SCRIPT_MODULES, SECURITY_HEADERS
from tuichat.tui.widgets.invite import invite_command, invite_link

pytestmark = pytest.mark.timeout(60)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Debian's Chromium, headless, with fake camera and microphone; without the background-networking
#: flags its connections here are refused many at a time. Playwright adds a fresh --user-data-dir.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
EVIL_NAME = "<img src=x onerror=alert(1)>"


def _missing(reason: str) -> None:
    message = f"headless Chromium unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (required when CI=true)")
    pytest.skip(message)


@contextlib.asynccontextmanager
async def chromium(*extra_args: str, without: tuple[str, ...] = ()) -> AsyncIterator[Any]:
    """A headless Chromium (Playwright driving Debian's build), closed whatever happens; ``without``
    leaves some of the standard flags out."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        _missing("chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        args = [a for a in CHROMIUM_ARGS if a not in without] + list(extra_args)
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            await browser.close()


class WebPage:
    """A Playwright page plus what tests need: JS conditions polled with a timeout, dialogs recorded.

    Conditions are polled from Python (``evaluate`` is exempt from the page's CSP; Playwright's
    ``wait_for_function`` evaluates strings inside the page, which the CSP forbids, as it should)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        task = asyncio.ensure_future(dialog.dismiss())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def js(self, expression: str) -> Any:
        return await self.page.evaluate(expression)

    async def until(self, expression: str, timeout: float = 10.0) -> Any:
        async def poll() -> Any:
            while not (value := await self.page.evaluate(expression)):
                await asyncio.sleep(0.05)
            return value

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            status = await self.page.evaluate("document.querySelector('.statuses')?.innerText")
            raise AssertionError(f"not true within {timeout:g} s: {expression} (statuses: {status!r}, "
                                 f"page errors: {self.errors})") from None

    async def join(self, url: str) -> None:
        """Open the room page and press Join (the name is prefilled from ``?name=``)."""
        await self.page.goto(url)
        await self.page.click("#join-button")
        await self.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)

    async def video_advances(self, name: str, since: float, timeout: float = 5.0) -> dict[str, Any]:
        """``video_of(name)`` once its playback time has passed ``since``: the picture plays."""
        async def poll() -> dict[str, Any]:
            while (video := await self.video_of(name)) is None or video["time"] <= since:
                await asyncio.sleep(0.05)
            return video

        return await asyncio.wait_for(poll(), timeout)

    async def settled(self, expression: str, timeout: float = 5.0) -> Any:
        """``expression``'s value once two reads a frame or so apart agree (a layout that settled)."""
        async def poll() -> Any:
            last = await self.page.evaluate(expression)
            while True:
                await asyncio.sleep(0.1)
                if (value := await self.page.evaluate(expression)) == last:
                    return value
                last = value

        return await asyncio.wait_for(poll(), timeout)

    async def video_of(self, name: str) -> dict[str, Any]:
        return await self.page.evaluate("""(name) => {
            const tile = [...document.querySelectorAll('.tile')]
                .find(t => t.querySelector('.tile-name').textContent === name);
            if (!tile) return null;
            const v = tile.querySelector('video');
            return {width: v.videoWidth, height: v.videoHeight, time: v.currentTime, muted: v.muted,
                    paused: v.paused, overlay: tile.querySelector('.tile-overlay').textContent};
        }""", name)


PLAYING_JS = """(name) => {
    const tile = [...document.querySelectorAll('.tile')].find(t => t.querySelector('.tile-name').textContent === name);
    const v = tile && tile.querySelector('video');
    return Boolean(v && v.videoWidth > 0 && v.currentTime > 0 && !v.paused);
}"""


async def wait_playing(page: WebPage, name: str, timeout: float = 10.0) -> None:
    await page.until(f"({PLAYING_JS})({json.dumps(name)})", timeout)


async def frames_change(call: Call, drain: AudioDrain, name: str, size: tuple[int, int]) -> None:
    """``call`` plays ``name`` (its current stream) at ``size``, audio reaches ``drain``, pictures change."""
    def current() -> Any:
        return next((s for s in call.streams.values()
                     if s.name == name and s.status is PlayStatus.PLAYING and s.size == size), None)

    await wait_until(lambda: current() is not None, timeout=10)
    stream = current()
    first, count, audio = stream.latest.copy(), stream.frames_received, drain.frames_received
    await wait_until(lambda: stream.frames_received >= count + 10 and drain.frames_received >= audio + 25,
                     timeout=5)
    assert stream.latest.shape == (size[1], size[0], 3)
    assert not np.array_equal(first, stream.latest)  # Chromium's fake camera moves


# --- pages and headers -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/r/a%2Fb", "/r/" + "x" * 40, "/r/%00x", "/r/a%20b", "/r/", "/r/a/b",
                                  "/join?room=a%2Fb"])
async def test_a_bad_room_url_gets_a_400_page_saying_why(server: RoomServer, path: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}{path}") as response:
        body = await response.text()
        assert response.status == 400, body
        assert response.content_type == "text/html"
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "That room name does not work" in body and "Traceback" not in body
        assert "a room name" in body  # the reason, e.g. "a room name must not contain '/'"


async def test_pages_carry_security_headers_and_escape_the_room(server: RoomServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as http:
        room = "<b>&x"
        async with http.get(f"{base}/r/{quote(room, safe='')}?name=al") as response:
            assert response.status == 200
            body = await response.text()
            headers = response.headers
            assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert "<b>&x" not in body and "&lt;b&gt;&amp;x" in body
            assert '<script type="module" src="../static/main.js"></script>' in body
            assert "<script>" not in body and " style=" not in body and " on" + "click" not in body
            assert f"{base}/r/%3Cb%3E%26x" in body  # the invite link
        # Every module of the page's script is served (a module left out of the list would break the
        # page), as JavaScript, and none of them parses HTML.
        package_modules = {path.name for path in importlib.resources.files("tuichat.web").iterdir()
                           if path.name.endswith(".js")}
        assert package_modules == set(SCRIPT_MODULES)
        for module in SCRIPT_MODULES:
            async with http.get(f"{base}/static/{module}") as response:
                assert response.status == 200 and response.content_type == "text/javascript"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert "innerHTML" not in await response.text()
        async with http.get(f"{base}/static/style.css") as response:
            assert response.status == 200 and response.content_type == "text/css"
        async with http.get(f"{base}/static/room.html") as response:
            assert response.status == 404
        async with http.get(f"{base}/") as response:
            assert response.status == 200 and "tuichat connect 127.0.0.1:" in await response.text()
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        async with http.get(f"{base}/join?room=lobby&name=al%20b", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "r/lobby?name=al%20b"
        async with http.get(f"{base}/r/lobby/?name=al", allow_redirects=False) as response:
            assert response.status == 301 and response.headers["Location"] == "../lobby?name=al"
        async with http.get(f"{base}/r/lobby/") as response:  # where a browser lands
            assert response.status == 200 and response.url.path == "/r/lobby"
        async with http.get(f"{base}/r/a/b/") as response:
            assert response.status == 400


@pytest.mark.parametrize("path", ["/nope", "/a/b/c", "/static/nope.js", "/r", "/favicon.ico", "/" + "x" * 300])
async def test_an_unknown_address_gets_the_styled_404_page(server: RoomServer, path: str) -> None:
    """QA: any other address answered aiohttp's plain text "404: Not Found", with no way on."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}{path}") as response:
        body = await response.text()
        assert response.status == 404 and response.content_type == "text/html", body
        for key, value in SECURITY_HEADERS.items():
            assert response.headers[key] == value, key
        assert "404: Not Found" not in body and "There is no page here" in body
        shown = path if len(path) <= 80 else path[:79] + "…"  # the visitor's own text, not all of it
        assert html.escape(f"Nothing is at {shown}.") in body
        root = "/".join([".."] * (path.count("/") - 1)) or "."
        assert f'<a href="{root}/">Go to the start page</a>' in body  # relative: works under a proxy's prefix
        assert f'href="{root}/static/style.css"' in body


async def test_extra_trailing_slashes_after_a_room_redirect_to_the_room(server: RoomServer) -> None:
    """QA: /r/lobby/ led to the room but /r/lobby// said "a room name must not contain '/'"."""
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as http:
        for slashes in (2, 3):
            async with http.get(f"{base}/r/lobby{'/' * slashes}?name=al", allow_redirects=False) as response:
                assert response.status == 301, await response.text()
                assert response.headers["Location"] == f"{'../' * slashes}lobby?name=al"  # relative
                assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            async with http.get(f"{base}/r/lobby{'/' * slashes}") as response:
                assert response.status == 200 and response.url.path == "/r/lobby"
        for bad in ("/r/a%2F/", "/r//", "/r/a/b//"):  # a '/' inside the name is still one
            async with http.get(f"{base}{bad}", allow_redirects=False) as response:
                assert response.status == 400, bad

async def _state_over_raw_websocket(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"type": "join", "id": 1, "room": "lobby", "name": "raw"}))
        return json.loads((await ws.receive()).data)


async def test_state_tells_the_public_url(server: RoomServer, url: str) -> None:
    state = await _state_over_raw_websocket(url)
    assert state["type"] == "state" and state["public_url"] == f"http://127.0.0.1:{server.port}"

    async with RoomServer("127.0.0.1", 0, public_url="https://chat.example.org/tc/") as proxied:
        state = await _state_over_raw_websocket(f"ws://127.0.0.1:{proxied.port}/ws")
        assert state["public_url"] == "https://chat.example.org/tc"
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{proxied.port}/r/x") as response:
            assert 'href="https://chat.example.org/tc/r/x"' in await response.text()
        # The start page's command is one that connects: the WebSocket path behind the prefix, wss.
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{proxied.port}/") as response:
            assert "tuichat connect wss://chat.example.org/tc/ws THEIR_NAME ROOM" in await response.text()
    async with (RoomServer("127.0.0.1", 0, public_url="https://chat.example.org") as proxied,
                aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{proxied.port}/") as response):
        assert "tuichat connect wss://chat.example.org THEIR_NAME ROOM" in await response.text()
    with pytest.raises(ValueError, match="not an http"):
        RoomServer("127.0.0.1", 0, public_url="chat.example.org")


def test_state_public_url_is_optional_on_the_wire() -> None:
    base = dict(room="r", you=ParticipantInfo(id="p1", name="a"), participants=[], history=[], resume="t")
    assert "public_url" not in encode(State(**base))  # type: ignore[arg-type]
    wire = ('{"type":"state","room":"r","you":{"id":"p1","name":"a","stream":null},"participants":[],'
            '"history":[],"resume":"t","media_slots":7,"public_url":"https://h:1"}')
    message = State(**base, public_url="https://h:1")  # type: ignore[arg-type]
    assert encode(message) == wire
    assert decode_server_message(wire) == message


def test_invite_links_from_what_people_type() -> None:
    assert invite_link("127.0.0.1:8765", "lobby") == "http://127.0.0.1:8765/r/lobby"
    assert invite_link("wss://chat.example.org", "a?b#c") == "https://chat.example.org/r/a%3Fb%23c"
    assert invite_link("wss://h:8443", "x") == "https://h:8443/r/x"
    assert invite_link("https://chat.example.org/tc/", "x") == "https://chat.example.org/tc/r/x"


# --- a real browser in a call ----------------------------------------------------------------------

async def test_the_pages_invite_command_is_the_terminal_clients_shell_quoted(server: RoomServer) -> None:
    """The page printed the room raw: pasted into a shell, ``a;b`` ran ``b`` and ``-x`` was an option."""
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        for room in ("a;b", "it's", "-x", "$HOME", "plain"):
            await page.join(f"http://127.0.0.1:{server.port}/r/{quote(room, safe='')}?name=web")
            shown = await page.js("document.querySelector('#invite-command').textContent")
            assert shown == invite_command(f"127.0.0.1:{server.port}", room)
            await page.page.click("#leave")
            await page.until("!document.querySelector('#join-view').hidden")
        assert page.errors == []


async def test_a_browser_joins_a_call_with_a_terminal_participant(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    bot = await peers.join("bot", publish=True, view=(320, 240, 15))
    evil = await peers.join(EVIL_NAME)  # chat only: a hostile name and hostile text
    for n in range(20):  # history enough to scroll: the page must open at the newest
        await evil.room.send_message(f"earlier line {n}")
    await evil.room.send_message("<script>alert(2)</script><b>bold?</b>")
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")

        # Both directions of media: the terminal side plays the browser's fake camera and microphone ...
        await frames_change(bot.call, bot.drain, "carol", (320, 240))
        # ... and the page plays the bot's test pattern (its sound too: the element is not muted).
        await wait_playing(page, "bot")
        before = await page.video_of("bot")
        after = await page.video_advances("bot", before["time"])
        assert after["width"] > 0 and not after["muted"], after
        assert (await page.js("document.querySelector('#session-status').dataset.state")) == "connected"

        # The people list, and hostile text shown as text: no element made from it, no dialog.
        people = await page.until("""(() => { const names = [...document.querySelectorAll('#people .person-name')]
            .map(n => n.textContent); return names.length === 3 && names; })()""")
        assert people[0] == "carol" and sorted(people) == sorted(["bot", "carol", EVIL_NAME])  # we come first
        messages = await page.js("document.querySelector('#messages').textContent")
        assert "<script>alert(2)</script><b>bold?</b>" in messages  # history on join
        log = "document.querySelector('#messages')"
        assert await page.js(f"{log}.scrollHeight > {log}.clientHeight + 100")  # it does scroll
        await page.until(f"{log}.scrollHeight - {log}.scrollTop - {log}.clientHeight < 40", 5)
        assert await page.js("document.querySelectorAll('#people img, #messages img, #messages b, "
                             "#grid img, #messages script').length") == 0
        assert page.dialogs == []

        # Chat both ways, and a private message.
        await page.page.fill("#text", "hello from the browser")
        await page.page.press("#text", "Enter")
        said = await bot.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE and u.message.sender.name
                                               == "carol", timeout=5)
        assert said.message.text == "hello from the browser" and not said.message.private
        await bot.room.send_message("hi carol, just you", to=bot.room.participant_named("carol"))
        await page.until("[...document.querySelectorAll('#messages .message.private .message-text')]"
                         ".some(m => m.textContent === 'hi carol, just you')", 5)

        # Mute and camera off reach the room as UPDATED; the sender stops.
        await page.page.click("#mic")
        await bot.room_updates.wait_for(lambda u: u.event is RoomEvent.UPDATED and u.participant.name == "carol"
                                        and u.participant.audio_muted and not u.participant.video_muted, timeout=5)
        await page.page.click("#cam")
        await bot.room_updates.wait_for(lambda u: u.event is RoomEvent.UPDATED and u.participant.name == "carol"
                                        and u.participant.video_muted, timeout=5)
        # The bot's mute shows in the browser.
        await bot.call.mute_audio(True)
        await page.until("""[...document.querySelectorAll('#people .person')].some(p =>
            p.querySelector('.person-name').textContent === 'bot' && p.textContent.includes('mic off'))""", 5)
        # Someone with no microphone at all is "no mic", not "mic off" (muted).
        silent = await peers.join("silent", start=False)
        camera = TestPatternTrack(320, 240, 15, label="silent")
        silent.tracks.append(camera)  # stopped with the peer
        await silent.call.set_camera(camera)
        await silent.call.start()
        await page.until("""[...document.querySelectorAll('#people .person')].some(p =>
            p.querySelector('.person-name').textContent === 'silent' && p.textContent.includes('no mic')
            && !p.textContent.includes('mic off'))""", 8)

        # Closing the page: the others get LEFT.
        await page.page.close()
        await bot.room_updates.wait_for(lambda u: u.event is RoomEvent.LEFT and u.participant.name == "carol",
                                        timeout=8)
        assert page.errors == []


async def test_the_browser_reconnects_and_rejoins_after_a_drop(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    bot = await peers.join("bot", publish=True, view=(160, 120, 15))
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=dave")
        await wait_playing(page, "bot")
        joined = Recorder()
        bot.room.on(RoomEvent.JOINED, joined)
        for connection in list(server.connections):
            if connection.member is not None and connection.member.name == "dave":
                await connection.ws.close()
        await page.until("document.querySelector('#session-status').dataset.state === 'reconnecting'", 5)
        await joined.wait_for(lambda u: u.participant.name == "dave", timeout=10)
        await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 10)
        await frames_change(bot.call, bot.drain, "dave", (160, 120))
        await wait_playing(page, "bot")
        assert page.errors == []


class _RefusingOffers:
    """An injected fault: the server's MediaHub refuses the next ``refusals`` offers as media_failed
    (as a server that cannot set up a peer connection for a while does); ``offers`` counts them all."""

    REASON = "no media for now"

    def __init__(self, server: RoomServer, refusals: int) -> None:
        self.real = server.media.offer
        self.refusals = refusals
        self.offers = 0

    async def __call__(self, member: Any, sdp: str, views: Any, deliver: Any) -> str:
        self.offers += 1
        if self.refusals > 0:
            self.refusals -= 1
            raise CommandFailed(ErrorCode.MEDIA_FAILED, self.REASON)
        return await self.real(member, sdp, views, deliver)


#: Before the page's own script: every text #call-status shows, in order, and every peer connection made.
RECORD_CALL_JS = """
window.__statuses = [];
window.__pcs = [];
const RealPeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends RealPeerConnection {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
new MutationObserver(() => {
  const node = document.getElementById('call-status');
  if (node && node.textContent !== window.__statuses[window.__statuses.length - 1]) {
    window.__statuses.push(node.textContent);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
OPEN_PCS_JS = "window.__pcs.filter(pc => pc.connectionState !== 'closed').length"


async def test_media_is_set_up_again_with_backoff_until_the_server_takes_it(
        server: RoomServer, peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """QA: an offer refused (or a connection that did not come up) left "media: failed: …" for good,
    while the terminal client restarts its call. Now the page tries again, the wait doubling, says so,
    keeps one peer connection at a time, and counts again from the first attempt once it is up."""
    bot = await peers.join("bot", publish=True, view=(160, 120, 15))
    refusing = _RefusingOffers(server, refusals=2)
    monkeypatch.setattr(server.media, "offer", refusing)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.add_init_script(RECORD_CALL_JS)
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=dave")
        failed = f"media: failed ({refusing.REASON}); trying again in"
        assert await page.js("window.__statuses") == [
            "media off", "media: connecting…",
            f"{failed} 0.5 s (attempt 2 of 5)", "media: connecting… (attempt 2 of 5)",
            f"{failed} 1 s (attempt 3 of 5)", "media: connecting… (attempt 3 of 5)",
            "media: connected"]
        assert refusing.offers == 3 and await page.js("window.__pcs.length") == 3
        assert await page.js(OPEN_PCS_JS) == 1  # the refused ones were closed, not left behind
        assert await page.js("document.querySelector('#media-note').hidden")
        await wait_playing(page, "bot")
        await frames_change(bot.call, bot.drain, "dave", (160, 120))
        await page.until("document.querySelector('#publish-status').textContent === 'sending: camera on, mic on'")

        # Once up, a later failure starts again from the first attempt (not the fourth).
        await page.js("window.__statuses = []")
        refusing.refusals = 1
        for connection in list(server.connections):
            if connection.member is not None and connection.member.name == "dave":
                await connection.ws.close()
        await page.until("document.querySelector('#session-status').dataset.state === 'reconnecting'", 5)
        await page.until("document.querySelector('#session-status').dataset.state === 'connected' && "
                         "document.querySelector('#call-status').dataset.state === 'connected'", 15)
        statuses = await page.js("window.__statuses")
        assert f"{failed} 0.5 s (attempt 2 of 5)" in statuses and "media: connecting… (attempt 2 of 5)" in statuses
        assert not [s for s in statuses if "attempt 3" in s or "attempt 4" in s], statuses
        assert refusing.offers == 5 and await page.js(OPEN_PCS_JS) == 1
        await wait_playing(page, "bot")
        assert page.errors == []


async def test_media_gives_up_after_its_attempts_and_try_again_sets_it_up(
        server: RoomServer, peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """After the last attempt the page stops, says so in words on the stage and in the status bar,
    and Try again sets up the media in the same room once the server takes it."""
    await peers.join("bot", publish=True, view=(160, 120, 15))
    refusing = _RefusingOffers(server, refusals=1_000)
    monkeypatch.setattr(server.media, "offer", refusing)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.add_init_script(RECORD_CALL_JS)
        await page.page.goto(f"http://127.0.0.1:{server.port}/r/call?name=dave")
        await page.page.click("#join-button")
        await page.until("!document.querySelector('#media-note').hidden", 20)  # waits 0.5 + 1 + 2 + 4 s
        assert await page.js("document.querySelector('#call-status').textContent") == \
            f"media: failed after 5 attempts ({refusing.REASON})"
        assert await page.js("document.querySelector('#call-status').dataset.state") == "failed"
        assert await page.js("document.querySelector('#media-note-text').textContent") == (
            f"Video and sound could not be connected: {refusing.REASON} (tried 5 times). You can still chat.")
        assert refusing.offers == 5 and await page.js(OPEN_PCS_JS) == 0
        assert [s for s in await page.js("window.__statuses") if s.startswith("media: connecting")] == [
            "media: connecting…", *[f"media: connecting… (attempt {n} of 5)" for n in range(2, 6)]]
        assert await page.js("document.querySelector('#session-status').dataset.state") == "connected"

        refusing.refusals = 0
        await page.page.click("#media-retry")
        await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)
        assert await page.js("document.querySelector('#media-note').hidden")
        await wait_playing(page, "bot")
        assert refusing.offers == 6 and await page.js(OPEN_PCS_JS) == 1
        assert page.errors == []

async def test_a_browser_without_camera_permission_watches_over_mdns_candidates(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """Without the fake permission UI, headless Chromium refuses the camera: the page joins to watch
    and chat. With no media permission Chromium hides its addresses behind mDNS names (``x.local``);
    the server's own host candidates are enough, it learns the browser's address peer-reflexively."""
    bot = await peers.join("bot", publish=True, view=(160, 120, 15))
    async with chromium(without=("--use-fake-ui-for-media-stream",)) as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=erin")
        offer = await page.js("window.tuichat.state.call.pc.localDescription.sdp")
        assert ".local " in offer and "192.0.2.2" not in offer
        await wait_playing(page, "bot")
        note = await page.js("document.querySelector('#device-note').hidden || "
                             "document.querySelector('#device-note-text').textContent")
        assert "did not allow this page to use your camera and microphone" in note, note
        assert await page.js("document.querySelector('#publish-status').textContent") == \
            "not sending (no camera or microphone)"
        erin = await bot.room_updates.wait_for(lambda u: u.event is RoomEvent.JOINED, timeout=5)
        assert erin.participant.name == "erin" and erin.participant.stream is None
        assert page.errors == []


LAYOUT_JS = """() => {
    const box = (e) => { const b = e.getBoundingClientRect(); return {left: b.left, top: b.top, right: b.right,
                                                                     bottom: b.bottom, height: b.height}; };
    const one = (selector) => box(document.querySelector(selector));
    return {people: one('#people'), messages: one('#messages'), to: one('#to'), stage: one('.stage'),
            side: one('.side'), tiles: [...document.querySelectorAll('.tile')].map(box)};
}"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["left"] < b["right"] - 0.5 and b["left"] < a["right"] - 0.5 and \
        a["top"] < b["bottom"] - 0.5 and b["top"] < a["bottom"] - 0.5


async def test_a_short_window_keeps_people_and_messages_readable(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """Phone landscape (740×420): the side column (beside the video; it was stacked below it) must not
    be squeezed to nothing (the lists drawn over each other and the recipient selector); it scrolls
    instead, the messages and the composer first, in view."""
    ann = await peers.join("ann", start=False)
    await peers.join("bob", start=False)
    await peers.join("cat", start=False)
    for n in range(6):
        await ann.room.send_message(f"line {n}")
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 740, "height": 420}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=dan")
        await page.until("document.querySelectorAll('#people .person').length === 4 && "
                         "document.querySelectorAll('#messages .message').length >= 6 && "
                         "document.querySelectorAll('.tile').length === 4")
        layout = await page.settled(LAYOUT_JS)  # the tile layout follows the grid's ResizeObserver
        people, messages, to = layout["people"], layout["messages"], layout["to"]
        assert people["height"] >= 60 and messages["height"] >= 60, layout
        assert not _overlap(people, messages) and not _overlap(people, to) and not _overlap(messages, to), layout
        assert messages["bottom"] <= to["top"], layout  # the history above the selector
        stage = layout["stage"]
        for tile in layout["tiles"]:  # the four tiles fit the stage, none drawn over the people list
            assert stage["top"] - 0.5 <= tile["top"] and tile["bottom"] <= stage["bottom"] + 0.5, layout
            assert not _overlap(tile, layout["side"]), layout
        # Scrolled to its end, the view shows the whole message list and the composer.
        await page.js("document.querySelector('#call-view').scrollTop = 1e6")
        view = await page.js("(() => { const b = document.querySelector('#call-view').getBoundingClientRect();"
                             " return {top: b.top, bottom: b.bottom}; })()")
        layout = await page.js(LAYOUT_JS)
        assert view["top"] <= layout["messages"]["top"] and layout["to"]["bottom"] <= view["bottom"], (view, layout)
        assert page.errors == []


# --- private messages whose recipient leaves -------------------------------------------------------

NOTICES_JS = "[...document.querySelectorAll('#messages .notice')].map(n => n.textContent)"
TO_JS = """(() => { const s = document.querySelector('#to');
    return {value: s.value, label: s.selectedOptions[0] ? s.selectedOptions[0].textContent : null,
            options: [...s.options].map(o => o.textContent)}; })()"""
TEXT_JS = "document.querySelector('#text').value"


async def _sent_or_refused(page: WebPage) -> str:
    """After Enter: the refusal notice, or "sent" once the input was cleared by the server's ack."""
    return str(await page.until(f"{NOTICES_JS}.find(n => n.startsWith('Not sent')) || "
                                f"({TEXT_JS} === '' && 'sent')", 5))


async def _refused_and_kept(page: WebPage, text: str, watcher: Peer, refusal: str) -> None:
    """Type ``text`` and press Enter: refused with ``refusal`` and kept in the box. Had it gone out,
    the failure says what ``watcher`` (who should not have got it) got."""
    await page.page.fill("#text", text)
    await page.page.press("#text", "Enter")
    outcome = await _sent_or_refused(page)
    if outcome == "sent":
        got = await watcher.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
        pytest.fail(f"sent with the menu at {await page.js(TO_JS)}: {watcher.session.username} got "
                    f"{got.message.sender.name}: {got.message.text!r} (private: {got.message.private})")
    assert outcome == refusal
    assert await page.js(TEXT_JS) == text  # nothing typed is lost


async def test_a_private_message_to_someone_who_left_is_refused_not_sent_to_everyone(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA's bug: "dan (private)" chosen, dan quits, the menu fell back to Everyone and the secret went to
    the whole room. Now the choice stays, marked "dan (left)"; sending is refused and the text kept; dan
    rejoining (a new participant id) is followed by name; Everyone goes only when chosen."""
    bob = await peers.join("bob", start=False)  # sees whatever goes to everyone
    dan = await peers.join("dan", start=False)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until(f"{TO_JS}.options.includes('dan (private)')")
        await page.page.select_option("#to", label="dan (private)")

        await dan.session.disconnect()  # the terminal's Ctrl+Q
        await page.until(f"{NOTICES_JS}.some(n => n.startsWith('dan left'))")
        await _refused_and_kept(page, "secret meant for dan", bob,
                                "Not sent: dan has left. Choose someone else, or Everyone, to send it.")
        notices = await page.js(NOTICES_JS)
        assert "dan left" in notices and "dan left (left)" not in notices, notices  # no repeated verb
        to = await page.js(TO_JS)
        assert to["label"] == "dan (left)" and to["value"] != "", to
        assert await page.js("document.querySelector('#to').classList.contains('gone')")
        await page.page.press("#text", "Enter")  # again: refused again, still not sent
        await page.until(f"{NOTICES_JS}.filter(n => n.startsWith('Not sent: dan has left')).length === 2")

        # dan comes back under the same name (a new participant id): the choice follows him.
        dan_again = await peers.join("dan", start=False)
        new_id = dan_again.room.participant_named("dan").id
        await page.until(f"{TO_JS}.label === 'dan (private)' && {TO_JS}.value === {json.dumps(new_id)}")
        assert not await page.js("document.querySelector('#to').classList.contains('gone')")
        await page.page.press("#text", "Enter")
        got = await dan_again.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
        assert got.message.text == "secret meant for dan" and got.message.private
        await page.until(f"{TEXT_JS} === ''", 5)

        # Everyone, chosen on purpose; bob gets this after anything carol sent before it, and no secret.
        await page.page.select_option("#to", label="Everyone")
        await page.page.fill("#text", "hello everyone")
        await page.page.press("#text", "Enter")
        await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE and u.message.text == "hello everyone",
                                        timeout=5)
        said = [u.message.text for u in bob.room_updates.items if u.event is RoomEvent.MESSAGE]
        assert said == ["hello everyone"], said
        assert [m.text for m in server.registry.rooms["call"].history] == ["hello everyone"]
        assert await page.js(f"{TO_JS}.options") == ["Everyone", "bob (private)", "dan (private)"]
        assert page.errors == []


async def _read_all(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def test_a_name_clicked_for_a_private_message_who_leaves_while_typing(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """Clicking a name starts a private message; that person's connection drops mid-sentence: the notice
    gives the reason (it adds something here), and the finished sentence is refused, kept, not broadcast."""
    bob = await peers.join("bob", start=False)
    async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{server.port}/ws") as eve:
        await eve.send_str(json.dumps({"type": "join", "id": 1, "room": "call", "name": "eve"}))
        # Read what the server sends: aiohttp answers the server's pings only while reading, and a
        # slow browser start could outlast the heartbeat and drop eve before the page sees her.
        reading = asyncio.create_task(_read_all(eve))
        async with chromium() as browser:
            page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
            await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
            await page.until("[...document.querySelectorAll('#people .person-name')]"
                             ".some(n => n.textContent === 'eve')")
            await page.page.click("#people .person:has(.person-name:text-is('eve'))")
            assert (await page.js(TO_JS))["label"] == "eve (private)"
            assert await page.js("document.activeElement.id") == "text"
            await page.page.keyboard.type("meet me at")

            reading.cancel()
            await eve.close(code=4000)  # not a clean goodbye: the server calls it "connection lost"
            await page.until(f"{NOTICES_JS}.includes('eve left (connection lost)')")
            await page.page.keyboard.type(" noon")
            await page.page.keyboard.press("Enter")
            assert await _sent_or_refused(page) == \
                "Not sent: eve has left. Choose someone else, or Everyone, to send it."
            assert await page.js(TEXT_JS) == "meet me at noon"
            assert (await page.js(TO_JS))["label"] == "eve (left)"

            # Choosing someone else drops the departed entry; bob gets the sentence, privately.
            await page.page.click("#people .person:has(.person-name:text-is('bob'))")
            assert await page.js(f"{TO_JS}.options") == ["Everyone", "bob (private)"]
            await page.page.keyboard.press("Enter")
            got = await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
            assert got.message.text == "meet me at noon" and got.message.private
            assert not server.registry.rooms["call"].history
            assert page.errors == []


async def test_a_recipient_who_leaves_as_the_message_goes_out(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """The race: dan is gone at the server but his LEFT has not reached the page (held back here), so
    the page sends to his old id; the server refuses, and the page says so plainly and keeps the text."""
    dan = await peers.join("dan", start=False)
    hold_left = False
    held: list[str | bytes] = []
    routes: list[Any] = []

    def route(ws: Any) -> None:
        routes.append(ws)
        server_side = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if hold_left and json.loads(message).get("type") == "left":
                held.append(message)
            else:
                ws.send(message)

        server_side.on_message(from_server)

    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.page.route_web_socket("**/ws", route)
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until(f"{TO_JS}.options.includes('dan (private)')")
        await page.page.select_option("#to", label="dan (private)")
        hold_left = True
        await dan.session.disconnect()
        await wait_until(lambda: len(held) == 1, timeout=5)
        assert (await page.js(TO_JS))["label"] == "dan (private)"  # the page does not know yet
        await page.page.fill("#text", "are you still there?")
        await page.page.press("#text", "Enter")
        assert await _sent_or_refused(page) == \
            "Not sent: dan has left. Choose someone else, or Everyone, to send it."
        assert await page.js(TEXT_JS) == "are you still there?"
        assert not server.registry.rooms["call"].history

        # The LEFT arrives after all: the choice turns into "dan (left)", the text still waits.
        hold_left = False
        routes[-1].send(held.pop())
        await page.until(f"{TO_JS}.label === 'dan (left)' && {NOTICES_JS}.includes('dan left')")
        assert await page.js(TEXT_JS) == "are you still there?"
        assert page.errors == []


# --- chat commands, and sending faster than the server takes ---------------------------------------

def _messages_of(peer: Any) -> list[tuple[str, bool]]:
    return [(u.message.text, u.message.private) for u in peer.room_updates.items if u.event is RoomEvent.MESSAGE]


async def test_chat_commands_typed_in_the_page_are_read_as_the_terminal_reads_them(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: "/msg ben secret" typed in the page went to everyone, as text. The page now reads a line as
    the terminal client and the bot do (tuichat/client/chatline.py), so what works there works here."""
    bob = await peers.join("bob", start=False)
    ann = await peers.join("Ann Lee", start=False)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until("document.querySelectorAll('#people .person').length === 3")

        async def enter(line: str) -> None:
            await page.page.fill("#text", line)
            await page.page.press("#text", "Enter")

        async def refused(line: str) -> str:
            count = len(await page.js(NOTICES_JS))
            await enter(line)
            notice = str(await page.until(f"{NOTICES_JS}.length > {count} && {NOTICES_JS}.at(-1)"))
            assert await page.js(TEXT_JS) == line  # kept, to be corrected
            return notice

        await enter("/msg bob psst")
        await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
        assert _messages_of(bob) == [("psst", True)]
        await page.until(f"{TEXT_JS} === ''")
        await enter('/msg "ann lee" hi Ann,\n  two lines')  # quoted, matched as the server matches names
        await ann.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
        assert _messages_of(ann) == [("hi Ann,\n  two lines", True)]
        await page.until(f"{TEXT_JS} === ''")

        assert await refused("/msg nobody hello") == 'Not sent: nobody called "nobody" is in the room.'
        assert await refused("/msg bob") == \
            'Not sent: usage: /msg NAME TEXT (quote a name with spaces: /msg "Ann Lee" hi).'
        assert await refused("/shrug") == ("Not sent: unknown command /shrug. /help lists the commands; start "
                                           "the line with // to send it as text beginning with /.")
        await enter("/help")
        help_text = str(await page.until(f"{NOTICES_JS}.find(n => n.startsWith('Commands: '))"))
        assert "/msg NAME TEXT" in help_text and "//TEXT sends /TEXT" in help_text and "/quit" in help_text
        assert await page.js(TEXT_JS) == ""

        await enter("//shrug")  # a message that starts with a slash
        await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE and u.message.text == "/shrug",
                                        timeout=5)
        assert _messages_of(bob) == [("psst", True), ("/shrug", False)]
        assert _messages_of(ann) == [("hi Ann,\n  two lines", True), ("/shrug", False)]
        assert [m.text for m in server.registry.rooms["call"].history] == ["/shrug"]

        await enter("/quit")
        await page.until("!document.querySelector('#join-view').hidden")
        assert await page.js("document.querySelector('#join-notice').textContent") == "You left the room."
        await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.LEFT and u.participant.name == "carol",
                                        timeout=5)
        assert page.errors == []


async def test_a_private_message_to_yourself_is_sent_as_the_terminal_client_sends_it(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """The page refused "/msg carol ..." typed by carol ("that is your own name"), while the terminal
    client sends it: its room finds a name among everyone, itself included (the bot does the same),
    and the server delivers a message to its sender once. Now the page sends it too, a note that
    nobody else sees."""
    bob = await peers.join("bob", start=False)
    assert bob.room.participant_named("BOB") is bob.room.me  # what the terminal client's /msg looks up
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until("document.querySelectorAll('#people .person').length === 2")
        await page.page.fill("#text", "/msg Carol note to self")  # matched as the server matches names
        await page.page.press("#text", "Enter")
        await page.until(f"{TEXT_JS} === ''")
        entry = await page.until("""(() => { const m = document.querySelector('#messages .message.private');
            return m && [m.querySelector('.message-from').textContent, m.querySelector('.message-private').textContent,
                         m.querySelector('.message-text').textContent]; })()""", 5)
        assert entry == ["carol", "private to you", "note to self"], entry
        assert not [n for n in await page.js(NOTICES_JS) if n.startswith("Not sent")]
        await page.page.fill("#text", "hello all")
        await page.page.press("#text", "Enter")
        await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
        assert _messages_of(bob) == [("hello all", False)]  # the note went to carol alone
        assert page.errors == []


FLOOD_JS = """async (count) => {
    const text = document.querySelector('#text'), form = document.querySelector('#composer');
    for (let i = 0; i < count; i++) {
        text.value = `flood ${i}`;
        form.requestSubmit();
        await new Promise((resolve) => setTimeout(resolve, 5));
    }
}"""


async def test_messages_sent_too_fast_wait_and_go_out_in_order(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: past the server's rate (a burst of 30, then 10/s) each message was dropped with "Not sent: too
    many commands; slow down". Now the page waits and sends again, as `tuichat bot` does, in order."""
    bob = await peers.join("bob", start=False)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.page.evaluate(FLOOD_JS, 45)
        note = "document.querySelector('#composer-note').textContent"
        assert await page.until(note, 5) == "Sending too fast: waiting a moment, then sending again…"
        await wait_until(lambda: len(_messages_of(bob)) >= 45, timeout=20)
        assert _messages_of(bob) == [(f"flood {i}", False) for i in range(45)]
        await page.until(f"{TEXT_JS} === '' && {note} === ''")
        assert [n for n in await page.js(NOTICES_JS) if n.startswith("Not sent")] == []
        assert page.errors == []


# --- outages, rejoining, and what the page says meanwhile ------------------------------------------

STATUS_JS = "document.querySelector('#session-status').textContent"
TILE_JS = """(name) => {
    const tile = [...document.querySelectorAll('.tile')].find(t => t.querySelector('.tile-name').textContent === name);
    return tile && {status: tile.dataset.status, note: tile.querySelector('.tile-overlay').hidden ? ''
                    : tile.querySelector('.tile-overlay').textContent, role: tile.getAttribute('role'),
                    label: tile.getAttribute('aria-label')};
}"""


#: The log's line when the server stops (it closes every connection with 1001 "server shutting down").
SHUTDOWN = "Connection lost: the server is shutting down; reconnecting…"


def _notices_of(notices: list[str], text: str) -> int:
    return sum(1 for n in notices if n == text)


async def _until_retrying_slowly(page: WebPage) -> None:
    """Several attempts have failed: the next one is at least 2 s away (backoff 0.25 s doubling)."""
    await page.until(f"/attempt ([4-9]|\\d\\d)\\)$/.test({STATUS_JS})", 10)


async def test_an_outage_is_said_once_and_what_is_shown_is_marked_as_from_before() -> None:
    """QA: the server away for a while, and only one small status item changed: the media said
    "connected", the tiles froze on their last frame, the people list looked live, the log said
    nothing, and the status said "code 1006". Now the log says it once each way, the tiles say they
    are paused, the list is marked as from before the drop, and the title says so too."""
    port = free_port()
    first = RoomServer("127.0.0.1", port, limits=ServerLimits(heartbeat=2.0))
    await first.start()
    others = Peers(f"ws://127.0.0.1:{port}/ws")
    try:
        await others.join("bot", publish=True, view=(160, 120, 15))
        async with chromium() as browser:
            page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
            await page.join(f"http://127.0.0.1:{port}/r/call?name=dave")
            await wait_playing(page, "bot")
            assert await page.js("document.title") == "● call · tuichat"
            assert await page.js("document.querySelector('.statuses').getAttribute('aria-live')") == "polite"

            await first.stop()
            await _until_retrying_slowly(page)  # several attempts: the log must not say it per attempt
            status = await page.js(STATUS_JS)
            assert status.startswith("server: not reachable; trying again in "), status
            assert "code" not in status and "1006" not in status and "1001" not in status, status
            assert _notices_of(await page.js(NOTICES_JS), SHUTDOWN) == 1
            assert await page.js("document.querySelector('#call-status').textContent") == \
                "media: paused until the server is back"
            assert await page.js("document.querySelector('#publish-status').textContent") == \
                "not sending while reconnecting"
            assert await page.js(f"({TILE_JS})('bot')") == {
                "status": "paused", "note": "paused: reconnecting…", "role": "group", "label": "bot"}
            assert await page.js("document.querySelector('#people').classList.contains('stale') && "
                                 "!document.querySelector('#people-stale').hidden && "
                                 "document.querySelector('#people-stale').textContent") == \
                "As before the connection dropped"
            assert await page.js("document.title") == "(reconnecting) call · tuichat"

            async with RoomServer("127.0.0.1", port, limits=ServerLimits(heartbeat=2.0)):
                await page.until(f"{NOTICES_JS}.includes('Reconnected.')", 15)
                await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)
                notices = await page.js(NOTICES_JS)
                assert _notices_of(notices, SHUTDOWN) == 1, notices
                assert _notices_of(notices, "Reconnected.") == 1, notices
                assert notices.index(SHUTDOWN) < notices.index("Reconnected."), notices
                assert await page.js("document.title") == "● call · tuichat"
                assert not await page.js("document.querySelector('#people').classList.contains('stale')")
                assert await page.js("document.querySelector('#people-stale').hidden")
                assert await page.js(STATUS_JS) == "server: connected"
                await page.until(f"({TILE_JS})('bot') && ({TILE_JS})('bot').status !== 'paused'", 10)
                assert page.errors == []
                await others.close()
    finally:
        await others.close()
        await first.stop()


async def test_a_rejoin_refused_after_a_server_restart_goes_back_to_the_join_form() -> None:
    """QA: after a restart someone else had taken the name; the page stayed in a dead call for ever
    (old people, frozen tiles, "sending: camera on, mic on", chat refused, no retry). Now it leaves the
    call cleanly and puts the reason on the join form, the name selected to change."""
    port = free_port()
    first = RoomServer("127.0.0.1", port, limits=ServerLimits(heartbeat=2.0))
    await first.start()
    thief = Session(f"ws://127.0.0.1:{port}/ws", "webuser", backoff_initial=0.05)
    try:
        async with chromium() as browser:
            page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
            await page.join(f"http://127.0.0.1:{port}/r/lobby?name=webuser")
            await page.js("window.__before = {tracks: window.tuichat.state.local.stream.getTracks(), "
                          "pc: window.tuichat.state.call.pc}")
            await first.stop()
            await _until_retrying_slowly(page)
            async with RoomServer("127.0.0.1", port, limits=ServerLimits(heartbeat=2.0)) as second:
                await thief.connect()
                await thief.join("lobby")  # before the page's next attempt, seconds away
                await page.until("!document.querySelector('#join-view').hidden", 15)
                assert await page.js("document.querySelector('#join-error').textContent") == (
                    "Could not rejoin after the connection dropped. That name is taken: someone called "
                    "'webuser' is already in room 'lobby'. Choose another name.")
                assert await page.js("""(() => { const i = document.activeElement; return i.id === 'join-name'
                    && i.selectionStart === 0 && i.selectionEnd === i.value.length; })()""")
                left = await page.js("""(() => ({
                    tracks: window.__before.tracks.map(t => t.readyState),
                    pc: window.__before.pc.signalingState,
                    call: document.querySelector('#call-view').hidden,
                    bar: document.querySelector('#statusbar').hidden,
                    tiles: document.querySelectorAll('.tile').length,
                    people: document.querySelectorAll('#people li').length,
                    title: document.title}))()""")
                assert left == {"tracks": ["ended", "ended"], "pc": "closed", "call": True, "bar": True,
                                "tiles": 0, "people": 0, "title": "lobby · tuichat"}, left
                # Only the thief is there: the page stopped trying. Another name joins at once.
                assert [m.name for m in second.registry.rooms["lobby"].members.values()] == ["webuser"]
                await page.page.keyboard.type("webuser 2")
                await page.page.keyboard.press("Enter")
                await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)
                assert sorted(m.name for m in second.registry.rooms["lobby"].members.values()) == \
                    ["webuser", "webuser 2"]
                assert page.errors == []
                await thief.disconnect()
    finally:
        await thief.disconnect()
        await first.stop()


async def test_a_chosen_recipient_is_not_someone_else_after_a_server_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: participant ids start again at p1 after a server restart; the page kept "quin (private)" by
    id, p2 was now eve, and the secret meant for quin went to eve. The choice is the same person (id
    and name) or "quin (left)", and nothing is sent to anyone."""
    # A server process counts participant ids from p1; in this one process, each server here does too.
    monkeypatch.setattr(room_module, "_member_ids", itertools.count(1))
    port = free_port()
    first = RoomServer("127.0.0.1", port, limits=ServerLimits(heartbeat=2.0))
    await first.start()
    others = Peers(f"ws://127.0.0.1:{port}/ws")
    try:
        async with chromium() as browser, aiohttp.ClientSession() as http:
            page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
            await page.join(f"http://127.0.0.1:{port}/r/pm?name=rae")
            quin = await http.ws_connect(f"ws://127.0.0.1:{port}/ws")  # gone with the first server
            await quin.send_str(json.dumps({"type": "join", "id": 1, "room": "pm", "name": "quin"}))
            reading = asyncio.create_task(_read_all(quin))
            await page.until(f"{TO_JS}.options.includes('quin (private)')")
            await page.page.select_option("#to", label="quin (private)")
            quin_id = (await page.js(TO_JS))["value"]

            await first.stop()
            await reading
            await _until_retrying_slowly(page)
            monkeypatch.setattr(room_module, "_member_ids", itertools.count(1))
            async with RoomServer("127.0.0.1", port, limits=ServerLimits(heartbeat=2.0)) as second:
                await others.join("zed", room="pm", start=False)
                eve = await others.join("eve", room="pm", start=False)
                assert eve.room.participant_named("eve").id == quin_id == "p2"  # the id quin had
                await page.until(f"{NOTICES_JS}.includes('Reconnected.') && "
                                 f"{TO_JS}.options.includes('eve (private)')", 15)
                to = await page.js(TO_JS)
                assert to["label"] == "quin (left)" and to["value"] != quin_id, to
                await _refused_and_kept(page, "secret meant for quin only", eve,
                                        "Not sent: quin has left. Choose someone else, or Everyone, to send it.")

                # Everyone, on purpose: eve gets that after anything sent before it, and nothing else.
                await page.page.select_option("#to", label="Everyone")
                await page.page.fill("#text", "hello everyone")
                await page.page.press("#text", "Enter")
                await eve.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
                said = [(u.message.text, u.message.private) for u in eve.room_updates.items
                        if u.event is RoomEvent.MESSAGE]
                assert said == [("hello everyone", False)], said
                assert [m.text for m in second.registry.rooms["pm"].history] == ["hello everyone"]
                assert page.errors == []
                await others.close()
    finally:
        await others.close()
        await first.stop()


async def test_the_servers_reason_is_said_and_a_busy_server_is_tried_again() -> None:
    """QA: a server at its connection limit (HTTP 503) read as "the server is not reachable", with no
    retry; and the reason the server closed a connection ("server shutting down") was never shown."""
    async with (RoomServer("127.0.0.1", 0, limits=ServerLimits(heartbeat=2.0, max_connections=2)) as server,
                aiohttp.ClientSession() as http):
        held = [await http.ws_connect(f"ws://127.0.0.1:{server.port}/ws") for _ in range(2)]
        readers = [asyncio.create_task(_read_all(ws)) for ws in held]
        async with chromium() as browser:
            page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
            await page.page.goto(f"http://127.0.0.1:{server.port}/r/call?name=carol")
            await page.page.click("#join-button")
            notice = str(await page.until("document.querySelector('#join-notice').textContent", 10))
            assert notice.startswith("The server is busy (the server has 2 connections, its limit). "
                                     "Trying again in "), notice
            assert await page.js(JOIN_ERROR_JS) == ""
            await held[0].close()  # room for one more: the next attempt joins
            await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)
            assert await page.js("document.querySelector('#join-notice').textContent") == ""

            await server.stop()
            await page.until(f"{NOTICES_JS}.includes({json.dumps(SHUTDOWN)})", 5)
            assert page.errors == []
        for ws in held:
            await ws.close()
        await asyncio.gather(*readers)


# --- the join form ---------------------------------------------------------------------------------

JOIN_ERROR_JS = "document.querySelector('#join-error').textContent"


async def test_the_join_form_says_why_a_name_does_not_work(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: a name of spaces did nothing at all, and the server's reasons came in technical words alone."""
    await peers.join("bob", start=False)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.goto(f"http://127.0.0.1:{server.port}/r/call")
        await page.page.click("#join-button")
        assert await page.js(JOIN_ERROR_JS) == "Type a name to join."
        await page.page.fill("#join-name", "   ")
        await page.page.click("#join-button")
        assert await page.js(JOIN_ERROR_JS) == \
            "A name can't be only spaces: type at least one letter, number or sign."
        assert await page.js("document.activeElement.id") == "join-name"

        await page.page.fill("#join-name", "a\u200db")
        await page.page.click("#join-button")
        await page.until(f"{JOIN_ERROR_JS} !== ''")
        assert await page.js(JOIN_ERROR_JS) == ("That name can't be used: a name must not contain the character "
                                                "U+200D (ZERO WIDTH JOINER). Choose another name.")
        await page.page.fill("#join-name", "BOB")
        await page.page.click("#join-button")
        await page.until(f"{JOIN_ERROR_JS}.startsWith('That name is taken')")
        assert await page.js(JOIN_ERROR_JS) == \
            "That name is taken: someone called 'bob' is already in room 'call'. Choose another name."
        assert await page.js("document.activeElement.id") == "join-name"
        assert await page.js("document.querySelector('#call-view').hidden")
        assert page.errors == []


async def test_names_and_the_length_note_count_characters_as_the_server_does(server: RoomServer) -> None:
    """QA: the name field's maxlength=32 counted UTF-16 units (16 emoji, where the server takes 32), and
    typing on past the message limit said "1 character was left out" when 5 were."""
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.goto(f"http://127.0.0.1:{server.port}/r/call")
        await page.page.focus("#join-name")
        await page.page.keyboard.insert_text("😀" * 40)
        assert await page.js("[...document.querySelector('#join-name').value].length") == 32
        assert await page.js("document.querySelector('#join-notice').textContent") == \
            "A name holds at most 32 characters: 8 characters were left out."
        await page.page.click("#join-button")
        await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)
        assert [m.name for m in server.registry.rooms["call"].members.values()] == ["😀" * 32]

        await page.page.fill("#text", "y" * 1995)
        await page.page.focus("#text")
        await page.page.keyboard.type("0123456789")
        assert await page.js(TEXT_JS) == "y" * 1995 + "01234"
        assert await page.js("document.querySelector('#composer-note').textContent") == \
            "A message holds at most 2000 characters: 5 characters were left out."
        await page.page.keyboard.press("Backspace")
        assert await page.js("document.querySelector('#composer-note').textContent") == ""
        assert page.errors == []


async def test_leaving_is_a_neutral_notice_and_focus_goes_back_to_join(server: RoomServer) -> None:
    """QA: "You left the room." was shown in red as an alert, and focus was lost after Leave."""
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        assert await page.js("document.title") == "● call · tuichat"
        await page.page.click("#leave")
        await page.until("!document.querySelector('#join-view').hidden")
        assert await page.js(JOIN_ERROR_JS) == ""
        notice = await page.js("""(() => { const n = document.querySelector('#join-notice');
            return {text: n.textContent, role: n.getAttribute('role'), color: getComputedStyle(n).color,
                    danger: getComputedStyle(document.querySelector('#join-error')).color}; })()""")
        assert notice["text"] == "You left the room." and notice["role"] == "status", notice
        assert notice["color"] != notice["danger"], notice
        assert await page.js("document.activeElement.id") == "join-button"
        assert await page.js("document.title") == "call · tuichat"
        assert page.errors == []


# --- devices: a reload keeps them muted; denied devices can be asked for again ---------------------

async def test_a_reload_keeps_the_microphone_muted(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA (privacy): reloading mid-call unmuted the microphone. The choices now survive a reload, the
    form shows them before joining, and the room never sees the mic on."""
    bob = await peers.join("bob", start=False)
    seen: list[tuple[str, bool]] = []

    def record(update: Any) -> None:
        if update.participant.name == "carol" and update.participant.stream is not None:
            seen.append((update.event.value, update.participant.stream.audio_muted))

    for event in (RoomEvent.PUBLISHED, RoomEvent.UPDATED):
        bob.room.on(event, record)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until("document.querySelector('#publish-status').textContent === 'sending: camera on, mic on'")
        await page.page.click("#mic")
        await page.until("document.querySelector('#publish-status').textContent === 'sending: camera on, mic muted'")
        await page.page.reload()
        form = await page.js("""(() => ({mic: document.querySelector('#join-mic').checked,
            cam: document.querySelector('#join-cam').checked,
            button: document.querySelector('#join-button').textContent}))()""")
        assert form == {"mic": False, "cam": True, "button": "Join muted"}, form
        await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.LEFT, timeout=8)
        seen.clear()
        await page.page.click("#join-button")
        await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)
        await page.until("document.querySelector('#publish-status').textContent === 'sending: camera on, mic muted'")
        assert await page.js("document.querySelector('#mic').getAttribute('aria-pressed')") == "true"
        await wait_until(lambda: any(kind == "PUBLISHED" for kind, _ in seen), timeout=5)
        assert seen and all(muted for _, muted in seen), seen  # never "mic on", not even for a moment
        assert bob.room.participant_named("carol").audio_muted
        assert page.errors == []


SENDING_JS = """(() => { const call = window.tuichat.state.call;
    return {audio: Boolean(call.audio.sender.track), video: Boolean(call.video.sender.track)}; })()"""


class _Refusing:
    """An injected fault: a connection's call-control rate limit, refusing every command while on."""

    def __init__(self, bucket: Any) -> None:
        self.bucket = bucket
        self.on = False
        self.refused = 0

    def take(self) -> bool:
        if self.on:
            self.refused += 1
            return False
        return bool(self.bucket.take())


async def test_mute_converges_after_a_refusal_and_no_sound_goes_out_while_the_room_sees_it_muted(
        server: RoomServer) -> None:
    """QA (privacy): toggling fast got "rate_limited"; the page neither retried nor resynced, so the
    room saw "mic off" while the microphone was sent. Now an unmute is sent only once the server has
    it, and a refused mute is sent again until the room sees what the buttons say."""
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until("document.querySelector('#publish-status').textContent === 'sending: camera on, mic on'")
        room = server.registry.rooms["call"]
        [connection] = [c for c in server.connections if c.member is not None and c.member.name == "carol"]
        limit = connection._control_bucket = _Refusing(connection._control_bucket)

        def told() -> tuple[bool, bool]:
            stream = room.member_named("carol").stream
            return stream.audio_muted, stream.video_muted

        await page.page.click("#mic")
        await wait_until(lambda: told() == (True, False))
        assert await page.js(SENDING_JS) == {"audio": False, "video": True}

        limit.on = True  # from here every call-control command is refused as too fast
        await page.page.click("#mic")  # unmute: refused
        await page.page.click("#cam")  # camera off: refused, but the camera stops at once
        await page.until(f"!{SENDING_JS}.video", 2)  # replaceTrack(null) settles a moment later
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.0
        while loop.time() < end:  # the page's retries are refused meanwhile too
            sending = await page.js(SENDING_JS)
            audio_muted, _ = told()  # read after the page: the room's view only ever catches up
            assert not (sending["audio"] and audio_muted), "sound sent while the room sees the microphone off"
            assert not sending["video"]
            await asyncio.sleep(0.05)
        assert told() == (True, False) and limit.refused >= 2, limit.refused

        limit.on = False
        await wait_until(lambda: told() == (False, True), timeout=8)
        assert await page.until(f"{SENDING_JS}.audio && {SENDING_JS}") == {"audio": True, "video": False}
        assert await page.js("document.querySelector('#mic').getAttribute('aria-pressed')") == "false"
        assert await page.js("document.querySelector('#cam').getAttribute('aria-pressed')") == "true"
        assert [n for n in await page.js(NOTICES_JS) if "slow down" in n] == []  # converged: nothing to say
        assert page.errors == []


#: Before the page's script: what the server sends reaches the page ``window.__lag`` ms late, in order
#: (a slow link: the server has a command, and has told the room, well before the page hears back).
SLOW_LINK_JS = """
window.__lag = 0;
const RealWebSocket = window.WebSocket;
window.WebSocket = class extends RealWebSocket {
  set onmessage(handler) {
    let queue = Promise.resolve();
    super.onmessage = (event) => {
      const due = performance.now() + window.__lag;
      queue = queue.then(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now()))))
        .then(() => handler.call(this, event));
    };
  }
};
"""


@pytest.mark.parametrize("device", ["mic", "camera"])
async def test_turned_on_again_while_the_room_is_told_it_is_off_is_sent_only_once_the_room_knows(
        server: RoomServer, device: str) -> None:
    """QA (privacy): muting (or camera off) and at once unmuting again, on a slow link: the page sent
    the sound again at once, going by what the room had last said (on), while the server had just
    told the room it was muted; the room saw "mic off" and heard the person until the page heard
    back. Now a mute on its way counts as told, so turning it on again waits for the room as any
    unmute does."""
    kind, button, index = ("audio", "#mic", 0) if device == "mic" else ("video", "#cam", 1)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.add_init_script(SLOW_LINK_JS)
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, mic on'")
        await page.until(f"{SENDING_JS}.audio && {SENDING_JS}.video")
        room = server.registry.rooms["call"]

        def told_off() -> bool:
            stream = room.member_named("carol").stream
            return bool((stream.audio_muted, stream.video_muted)[index])

        await page.js("window.__lag = 800")
        await page.page.click(button)  # off: stopped at once, then the room is told
        await wait_until(told_off)  # the room knows; the page hears of it 0.8 s later
        await page.page.click(button)  # on again at once
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        while loop.time() < end:
            before = told_off()
            sending = (await page.js(SENDING_JS))[kind]
            assert not (sending and before and told_off()), f"{kind} sent while the room is told it is off"
            await asyncio.sleep(0.02)
        await page.js("window.__lag = 0")
        await wait_until(lambda: not told_off(), timeout=8)
        await page.until(f"{SENDING_JS}.{kind}", 5)
        assert await page.js(PUBLISH_STATUS_JS) == "sending: camera on, mic on"
        assert page.errors == []


async def test_denied_devices_are_explained_once_and_can_be_asked_for_again(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: "permission denied; permission denied; permission denied" and no way forward. Now one
    sentence saying how to allow them, and Try again publishes them without leaving the room."""
    bob = await peers.join("bob", view=(160, 120, 15))
    async with chromium(without=("--use-fake-ui-for-media-stream",)) as browser:
        context = await browser.new_context(viewport={"width": 1000, "height": 700})
        page = WebPage(await context.new_page())
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=erin")
        text = await page.js("document.querySelector('#device-note-text').textContent")
        assert text == ("The browser did not allow this page to use your camera and microphone: you can watch "
                        "and chat, but nobody sees or hears you. To allow it, click the camera icon or the padlock "
                        "beside the address and choose Allow, then press Try again."), text
        assert "permission denied" not in text
        assert await page.js("document.querySelector('#publish-status').textContent") == \
            "not sending (no camera or microphone)"
        erin = bob.room.participant_named("erin")

        await context.grant_permissions(["camera", "microphone"], origin=f"http://127.0.0.1:{server.port}")
        await page.page.click("#device-retry")
        await page.until("document.querySelector('#publish-status').textContent === 'sending: camera on, mic on'")
        assert await page.js("document.querySelector('#device-note').hidden")
        await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.PUBLISHED and u.participant.name == "erin"
                                        and u.participant.stream.audio and u.participant.stream.video, timeout=5)
        assert bob.room.participant_named("erin") is erin  # the same participant: never left the room
        assert not [u for u in bob.room_updates.items if u.event is RoomEvent.LEFT]
        await frames_change(bob.call, bob.drain, "erin", (160, 120))
        assert page.errors == []


#: Before the page's script: a browser with no camera or microphone at all (whatever this machine has).
NO_DEVICES_JS = """navigator.mediaDevices.getUserMedia =
    () => Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));"""


@pytest.mark.parametrize(("without", "fault", "still", "problem"), [
    (("--use-fake-ui-for-media-stream",), None, "Still not allowed", "The browser did not allow this page"),
    ((), NO_DEVICES_JS, "Still no camera or microphone found", "No camera or microphone was found"),
], ids=["denied", "missing"])
async def test_try_again_says_when_the_devices_are_still_not_there(
        server: RoomServer, without: tuple[str, ...], fault: str | None, still: str, problem: str) -> None:
    """QA: pressing Try again while the camera was still blocked (or there was none) showed nothing at
    all: the same note, unchanged, as if the button did not work. Now the button says it is asking,
    and the note says the answer is the same, with the time it asked."""
    async with chromium(without=without) as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        if fault:
            await page.page.add_init_script(fault)
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=erin")
        note = "document.querySelector('#device-note-text').textContent"
        first = await page.js(note)
        assert first.startswith(problem), first
        await page.js("""(() => { const b = document.querySelector('#device-retry'); window.__button = [];
            new MutationObserver(() => window.__button.push([b.textContent, b.disabled]))
                .observe(b, {attributes: true, childList: true, characterData: true, subtree: true}); })()""")
        await page.page.click("#device-retry")
        text = str(await page.until(f"{note}.startsWith('Still') && {note}", 5))
        assert re.fullmatch(re.escape(still) + r" \(asked again at \d{1,2}:\d\d:\d\d( [AP]M)?\)\. " + re.escape(first),
                            text), text
        await page.until("!document.querySelector('#device-retry').disabled")
        assert ["Asking…", True] in await page.js("window.__button")  # it showed it was asking
        assert await page.js("document.querySelector('#device-retry').textContent") == "Try again"
        assert await page.js("document.querySelector('#publish-status').textContent") == \
            "not sending (no camera or microphone)"
        assert page.errors == []


# --- devices: what is off is not asked for, and the camera is released when turned off ------------

#: Before the page's script: every getUserMedia call (what it asked for, the tracks it got), and a
#: fault a test may set: ``window.__deviceFault = (constraints) => 'NotReadableError'`` refuses a call,
#: ``window.__hold`` (a promise) keeps calls waiting, as a permission prompt does, until it settles.
RECORD_DEVICES_JS = """
window.__asked = [];
window.__deviceFault = () => null;
const mediaDevices = navigator.mediaDevices;
const realGetUserMedia = mediaDevices.getUserMedia.bind(mediaDevices);
mediaDevices.getUserMedia = async (constraints) => {
  const call = {audio: Boolean(constraints && constraints.audio), video: Boolean(constraints && constraints.video),
                tracks: []};
  window.__asked.push(call);
  if (window.__hold) await window.__hold;
  const fault = window.__deviceFault(constraints || {});
  if (fault) {
    call.outcome = fault;
    throw new DOMException('injected', fault);
  }
  const stream = await realGetUserMedia(constraints).catch((error) => { call.outcome = error.name; throw error; });
  call.tracks = stream.getTracks();
  call.outcome = 'tracks';
  return stream;
};
"""
#: What each getUserMedia call asked for, as [audio, video]; ``outcome`` is 'tracks' or the error's name.
ASKED_JS = "window.__asked.map(c => [c.audio, c.video])"
#: How many camera and microphone tracks the page holds open (the camera light, the mic indicator).
LIVE_JS = """(() => { const live = window.__asked.flatMap(c => c.tracks).filter(t => t.readyState === 'live');
    return {audio: live.filter(t => t.kind === 'audio').length, video: live.filter(t => t.kind === 'video').length};
})()"""
PUBLISH_STATUS_JS = "document.querySelector('#publish-status').textContent"


def _record_streams(peer: Any, name: str) -> list[Any]:
    """Every stream of ``name`` the room announced to ``peer`` (PUBLISHED, UPDATED), in order."""
    seen: list[Any] = []

    def record(update: Any) -> None:
        if update.participant.name == name and update.participant.stream is not None:
            seen.append(update.participant.stream)

    for event in (RoomEvent.PUBLISHED, RoomEvent.UPDATED):
        peer.room.on(event, record)
    return seen


def _told(peer: Any, name: str) -> tuple[bool, bool, bool, bool] | None:
    """(audio, video, audio_muted, video_muted) of ``name`` as the room told ``peer``."""
    who = peer.room.participant_named(name)
    stream = who.stream if who is not None else None
    return None if stream is None else (stream.audio, stream.video, stream.audio_muted, stream.video_muted)


@pytest.mark.parametrize(("camera", "microphone"), [(False, True), (True, False), (False, False)],
                         ids=["camera-off", "muted", "both-off"])
async def test_what_is_off_when_joining_is_not_asked_for_until_it_is_turned_on(
        server: RoomServer, peers: Peers, camera: bool, microphone: bool) -> None:  # noqa: F811
    """Reported: the page asked for the camera (a permission prompt, the camera light on) even when
    the person joined with the camera off, and for the microphone when joining muted. Now it asks
    only for what is on. The room sees the rest as off (not missing) as before, and turning it on
    asks for it then, and sends it once the room has been told."""
    bob = await peers.join("bob", view=(160, 120, 15))
    seen = _record_streams(bob, "carol")
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.add_init_script(RECORD_DEVICES_JS)
        await page.page.goto(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        if not camera:
            await page.page.uncheck("#join-cam")
        if not microphone:
            await page.page.uncheck("#join-mic")
        await page.page.click("#join-button")
        await page.until("document.querySelector('#call-status').dataset.state === 'connected'", 15)
        status = f"sending: camera {'on' if camera else 'off'}, mic {'on' if microphone else 'muted'}"
        await page.until(f"{PUBLISH_STATUS_JS} === {json.dumps(status)}")
        assert await page.js(ASKED_JS) == ([[microphone, camera]] if camera or microphone else [])
        assert await page.js(LIVE_JS) == {"audio": int(microphone), "video": int(camera)}
        # The room sees what is off as off, as before ("camera off", not "no camera"), never on.
        await wait_until(lambda: _told(bob, "carol") == (True, True, not microphone, not camera))
        assert all(s.video_muted for s in seen) or camera, seen
        assert all(s.audio_muted for s in seen) or microphone, seen
        assert await page.js("[document.querySelector('#mic').disabled, document.querySelector('#cam').disabled]") \
            == [False, False]

        # Turned on, it is asked for now; the room is told, then it is sent.
        if not camera:
            await page.page.click("#cam")
        if not microphone:
            await page.page.click("#mic")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, mic on'")
        asked = await page.js(ASKED_JS)
        later = [[False, True]] * (not camera) + [[True, False]] * (not microphone)
        assert sorted(asked[int(camera or microphone):]) == sorted(later), asked
        assert await page.js(LIVE_JS) == {"audio": 1, "video": 1}
        await wait_until(lambda: _told(bob, "carol") == (True, True, False, False))
        await frames_change(bob.call, bob.drain, "carol", (160, 120))
        await wait_playing(page, "carol (you)")
        assert page.errors == []


async def test_turning_the_camera_off_releases_it_and_turning_it_on_asks_again(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """Camera off only disabled the track: the camera stayed open (its light on) for the whole call.
    Now it is stopped; turning it on asks for it again and sends it once the room has been told."""
    bob = await peers.join("bob", view=(160, 120, 15))
    seen = _record_streams(bob, "carol")
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.add_init_script(RECORD_DEVICES_JS)
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, mic on'")
        await frames_change(bob.call, bob.drain, "carol", (160, 120))
        assert await page.js(LIVE_JS) == {"audio": 1, "video": 1}

        await page.page.click("#cam")
        await page.until(f"{LIVE_JS}.video === 0", 5)  # released: stopped, not only disabled
        await page.until(f"!{SENDING_JS}.video", 2)
        await wait_until(lambda: _told(bob, "carol") == (True, True, False, True))
        assert await page.js(LIVE_JS) == {"audio": 1, "video": 0}  # the microphone is not touched
        assert (await page.video_of("carol (you)"))["overlay"] == "camera off"
        assert await page.js("document.querySelector('#cam').getAttribute('aria-pressed')") == "true"

        seen.clear()
        await page.page.click("#cam")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, mic on'")
        assert await page.js(ASKED_JS) == [[True, True], [False, True]]
        assert await page.js(LIVE_JS) == {"audio": 1, "video": 1}
        await wait_until(lambda: _told(bob, "carol") == (True, True, False, False))
        assert await page.until(f"{SENDING_JS}.video && {SENDING_JS}") == {"audio": True, "video": True}
        assert [s.video_muted for s in seen] == [False]  # one UPDATED: the camera on
        await frames_change(bob.call, bob.drain, "carol", (160, 120))
        await wait_playing(page, "carol (you)")
        assert page.errors == []


async def _carol_joins_with_the_camera_off(browser: Any, server: RoomServer, bob: Peer) -> WebPage:
    """carol joins from the page with the camera off, the microphone on (getUserMedia recorded), and
    bob has been told so: mic on, camera off."""
    page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
    await page.page.add_init_script(RECORD_DEVICES_JS)
    await page.page.goto(f"http://127.0.0.1:{server.port}/r/call?name=carol")
    await page.page.uncheck("#join-cam")
    await page.page.click("#join-button")
    await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera off, mic on'", 15)
    await wait_until(lambda: _told(bob, "carol") == (True, True, False, True))
    return page


async def test_a_camera_that_cannot_start_when_turned_on_is_explained_and_never_shown_as_on(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """Joined with the camera off, the camera then turned on while another program holds it: the note
    says so (as when joining), the room never sees the camera on but "no camera", and Try again, once
    the camera is free, asks for it and publishes it without leaving the room."""
    bob = await peers.join("bob", view=(160, 120, 15))
    seen = _record_streams(bob, "carol")
    async with chromium() as browser:
        page = await _carol_joins_with_the_camera_off(browser, server, bob)
        carol = bob.room.participant_named("carol")

        await page.js("(() => { window.__deviceFault = (c) => c.video ? 'NotReadableError' : null; })()")
        await page.page.click("#cam")
        note = str(await page.until("!document.querySelector('#device-note').hidden && "
                                    "document.querySelector('#device-note-text').textContent", 5))
        assert note.startswith("No camera could be used"), note
        await wait_until(lambda: _told(bob, "carol") == (True, False, False, True))  # no camera (the mute kept)
        assert await page.js(PUBLISH_STATUS_JS) == "sending: mic on"
        assert await page.js("document.querySelector('#cam').disabled")
        assert (await page.video_of("carol (you)"))["overlay"] == "no camera"
        assert await page.js(LIVE_JS) == {"audio": 1, "video": 0}
        assert not [s for s in seen if s.video and not s.video_muted], seen

        await page.js("(() => { window.__deviceFault = () => null; })()")
        await page.page.click("#device-retry")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, mic on'")
        assert await page.js("document.querySelector('#device-note').hidden")
        assert await page.js(ASKED_JS) == [[True, False], [False, True], [False, True]]  # the mic kept
        await wait_until(lambda: _told(bob, "carol") == (True, True, False, False))
        await frames_change(bob.call, bob.drain, "carol", (160, 120))
        assert bob.room.participant_named("carol") is carol  # never left the room
        assert page.errors == []


async def test_a_camera_turned_off_again_while_the_browser_asks_is_not_left_open(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """Camera on, then off again before the browser answered (its prompt still up): the camera it then
    gives is stopped at once, never sent, and the room never sees it on."""
    bob = await peers.join("bob", view=(160, 120, 15))
    seen = _record_streams(bob, "carol")
    async with chromium() as browser:
        page = await _carol_joins_with_the_camera_off(browser, server, bob)

        await page.js("(() => { window.__hold = new Promise((resolve) => { window.__answer = resolve; }); })()")
        await page.page.click("#cam")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera starting, mic on'", 5)
        assert (await page.video_of("carol (you)"))["overlay"] == "starting camera…"
        await page.page.click("#cam")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera off, mic on'", 5)
        await page.js("window.__answer()")
        await page.until("window.__asked.length === 2 && window.__asked[1].tracks.length === 1", 5)
        await page.until(f"{LIVE_JS}.video === 0", 5)  # given, and stopped at once
        assert await page.js(ASKED_JS) == [[True, False], [False, True]]
        assert await page.js(f"{SENDING_JS}.video") is False
        assert await page.js(PUBLISH_STATUS_JS) == "sending: camera off, mic on"
        assert (await page.video_of("carol (you)"))["overlay"] == "camera off"
        assert await page.js("document.querySelector('#cam').getAttribute('aria-pressed')") == "true"
        assert not [s for s in seen if not s.video_muted], seen
        assert _told(bob, "carol") == (True, True, False, True)
        assert page.errors == []


#: The device note's text while shown, else ''.
DEVICE_NOTE_JS = """(document.querySelector('#device-note').hidden ? ''
    : document.querySelector('#device-note-text').textContent)"""
#: The self view: its overlay (when shown) and its flags.
SELF_JS = """(() => { const t = document.querySelector('.tile[data-id="self"]');
    return {overlay: t.querySelector('.tile-overlay').hidden ? '' : t.querySelector('.tile-overlay').textContent,
            flags: t.querySelector('.tile-flags').textContent}; })()"""
#: [mic button disabled, camera button disabled].
BUTTONS_DISABLED_JS = "[document.querySelector('#mic').disabled, document.querySelector('#cam').disabled]"


async def _page_allowed(browser: Any, server: RoomServer, allowed: list[str]) -> tuple[WebPage, Any]:
    """A page whose browser allows only ``allowed`` ("camera", "microphone") and refuses the rest at
    once (headless, without the fake prompt: as blocked in the site's settings); its devices recorded."""
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    if allowed:
        await context.grant_permissions(allowed, origin=f"http://127.0.0.1:{server.port}")
    page = WebPage(await context.new_page())
    await page.page.add_init_script(RECORD_DEVICES_JS)
    await page.page.goto(f"http://127.0.0.1:{server.port}/r/call?name=carol")
    return page, context


async def _video_arrives(peer: Any, name: str, size: tuple[int, int]) -> None:
    """``peer`` plays ``name``'s picture at ``size`` and new frames keep coming (sound or not)."""
    def current() -> Any:
        return next((s for s in peer.call.streams.values()
                     if s.name == name and s.status is PlayStatus.PLAYING and s.size == size), None)

    await wait_until(lambda: current() is not None, timeout=10)
    stream = current()
    count = stream.frames_received
    await wait_until(lambda: stream.frames_received >= count + 10, timeout=5)


@pytest.mark.parametrize("which", ["camera", "both"])
async def test_a_device_that_stops_while_on_is_let_go_and_the_room_is_told(
        server: RoomServer, peers: Peers, which: str) -> None:  # noqa: F811
    """QA: a camera that stopped while in use (unplugged; here its permission withdrawn, which makes
    Chromium end the tracks as an unplug does) went unnoticed: the page went on saying "sending:
    camera on", the self view froze on its last frame, the room was told the camera was on while
    nothing came, and there was nothing to press. Now the page lets it go, says so with a Try again,
    and the room sees "no camera" (or, with both gone, nothing published); Try again brings it back
    in the same room."""
    bob = await peers.join("bob", view=(160, 120, 15))
    async with chromium(without=("--use-fake-ui-for-media-stream",)) as browser:
        page, context = await _page_allowed(browser, server, ["camera", "microphone"])
        if which == "camera":
            await page.page.uncheck("#join-mic")  # the microphone left off: only the camera is held
        await page.page.click("#join-button")
        mic = "mic muted" if which == "camera" else "mic on"
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, {mic}'", 15)
        await wait_until(lambda: _told(bob, "carol") == (True, True, which == "camera", False))
        carol = bob.room.participant_named("carol")
        await _video_arrives(bob, "carol", (160, 120))
        assert await page.js(LIVE_JS) == {"audio": int(which == "both"), "video": 1}

        await context.clear_permissions()  # Chromium ends the tracks of what is no longer allowed
        await page.until(f"{LIVE_JS}.video === 0", 5)
        if which == "camera":
            await page.until(f"{PUBLISH_STATUS_JS} === 'sending: mic muted'", 5)
            assert str(await page.js(DEVICE_NOTE_JS)).startswith("The camera stopped (unplugged, or no longer "
                                                                 "allowed): nobody sees you.")
            assert await page.js(SELF_JS) == {"overlay": "no camera", "flags": "mic off"}
            assert await page.js(BUTTONS_DISABLED_JS) == [False, True]
            await wait_until(lambda: _told(bob, "carol") == (True, False, True, False))  # no camera now
        else:
            await page.until(f"{PUBLISH_STATUS_JS} === 'not sending (no camera or microphone)'", 5)
            assert str(await page.js(DEVICE_NOTE_JS)).startswith("The camera and microphone stopped")
            assert await page.js(SELF_JS) == {"overlay": "no camera", "flags": "no mic"}
            assert await page.js(BUTTONS_DISABLED_JS) == [True, True]
            await wait_until(lambda: _told(bob, "carol") is None)  # nothing published any more
        assert not await page.js("document.querySelector('#device-retry').hidden")
        assert await page.js(f"{SENDING_JS}.video") is False

        await context.grant_permissions(["camera", "microphone"], origin=f"http://127.0.0.1:{server.port}")
        await page.page.click("#device-retry")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, {mic}'", 5)
        assert await page.js(DEVICE_NOTE_JS) == ""
        await wait_until(lambda: _told(bob, "carol") == (True, True, which == "camera", False))
        await _video_arrives(bob, "carol", (160, 120))
        await wait_playing(page, "carol (you)")
        assert bob.room.participant_named("carol") is carol  # never left the room
        assert page.errors == []


async def test_a_camera_blocked_alone_does_not_take_the_microphone_with_it(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: with the camera blocked in the browser and the microphone allowed, joining asked for both
    together, the browser refused the pair, and the page said neither was allowed: nobody heard the
    person, and Try again asked for the pair again, refused again. Now the one allowed is asked for
    alone and sent, the note is about the camera alone, and Try again (once allowed) adds it."""
    bob = await peers.join("bob", view=(160, 120, 15))
    async with chromium(without=("--use-fake-ui-for-media-stream",)) as browser:
        page, context = await _page_allowed(browser, server, ["microphone"])
        await page.page.click("#join-button")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: mic on'", 15)
        assert await page.js(ASKED_JS) == [[True, True], [True, False]]
        assert str(await page.js(DEVICE_NOTE_JS)).startswith(
            "The browser did not allow this page to use your camera: nobody sees you.")
        assert await page.js(SELF_JS) == {"overlay": "no camera", "flags": ""}
        await wait_until(lambda: _told(bob, "carol") == (True, False, False, False))
        assert await page.js(LIVE_JS) == {"audio": 1, "video": 0}
        assert await page.js(SENDING_JS) == {"audio": True, "video": False}

        await context.grant_permissions(["camera", "microphone"], origin=f"http://127.0.0.1:{server.port}")
        await page.page.click("#device-retry")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, mic on'", 5)
        assert (await page.js(ASKED_JS))[2:] == [[False, True]]  # the microphone kept, not asked again
        assert await page.js(DEVICE_NOTE_JS) == ""
        await wait_until(lambda: _told(bob, "carol") == (True, True, False, False))
        await frames_change(bob.call, bob.drain, "carol", (160, 120))
        assert page.errors == []


async def test_the_camera_button_asks_for_the_camera_alone(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: joined with the camera off and the microphone blocked, pressing the camera button asked for
    the microphone too (the pair, refused for the microphone's sake): the camera, allowed, stayed
    off, and the room was told "no camera". Now the camera button asks for the camera alone."""
    bob = await peers.join("bob", view=(160, 120, 15))
    async with chromium(without=("--use-fake-ui-for-media-stream",)) as browser:
        page, _ = await _page_allowed(browser, server, ["camera"])
        await page.page.uncheck("#join-cam")
        await page.page.click("#join-button")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera off'", 15)
        note = str(await page.js(DEVICE_NOTE_JS))
        assert note.startswith("The browser did not allow this page to use your microphone: nobody hears you."), note
        await wait_until(lambda: _told(bob, "carol") == (False, True, False, True))

        await page.page.click("#cam")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on'", 5)
        assert await page.js(ASKED_JS) == [[True, False], [False, True]]
        assert await page.js(DEVICE_NOTE_JS) == note  # still about the microphone alone
        await wait_until(lambda: _told(bob, "carol") == (False, True, False, False))
        await _video_arrives(bob, "carol", (160, 120))
        assert await page.js(SELF_JS) == {"overlay": "", "flags": "no mic"}
        assert page.errors == []


async def test_a_camera_turned_off_again_while_the_browser_asks_then_refused_stays_off_not_missing(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: camera on, then off again while the browser's prompt was up, then the prompt refused or
    dismissed: the page showed "The browser did not allow...", disabled the camera button (no way to
    turn it on again but Try again) and told the room "no camera", for a camera the person had just
    turned off. Now nothing changes: the camera is off, its button works, the room sees it off."""
    bob = await peers.join("bob", view=(160, 120, 15))
    seen = _record_streams(bob, "carol")
    async with chromium() as browser:
        page = await _carol_joins_with_the_camera_off(browser, server, bob)
        seen.clear()

        await page.js("""(() => { window.__hold = new Promise((resolve) => { window.__answer = resolve; });
            window.__deviceFault = (c) => c.video ? 'NotAllowedError' : null; })()""")
        await page.page.click("#cam")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera starting, mic on'", 5)
        await page.page.click("#cam")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera off, mic on'", 5)
        await page.js("window.__answer()")
        await page.until("window.__asked.length === 2 && window.__asked[1].outcome === 'NotAllowedError'", 5)
        assert await page.js(DEVICE_NOTE_JS) == ""
        assert await page.js(PUBLISH_STATUS_JS) == "sending: camera off, mic on"
        assert await page.js(SELF_JS) == {"overlay": "camera off", "flags": ""}
        assert await page.js(BUTTONS_DISABLED_JS) == [False, False]
        assert _told(bob, "carol") == (True, True, False, True)

        # The button still works: on again, the browser asked again, and this time it gives it.
        await page.js("(() => { window.__hold = null; window.__deviceFault = () => null; })()")
        await page.page.click("#cam")
        await page.until(f"{PUBLISH_STATUS_JS} === 'sending: camera on, mic on'", 5)
        await wait_until(lambda: _told(bob, "carol") == (True, True, False, False))
        assert seen and all(s.video for s in seen), seen  # never "no camera"
        await frames_change(bob.call, bob.drain, "carol", (160, 120))
        assert page.errors == []


# --- insecure and loopback addresses ---------------------------------------------------------------

async def test_a_plain_http_lan_address_says_so_before_joining_and_still_copies_the_link(
        server: RoomServer) -> None:
    """QA: on http:// off localhost, Copy link always failed (no clipboard API there) and the camera
    problem was explained only after joining, in jargon."""
    origin = f"http://lan.test:{server.port}"
    async with chromium("--host-resolver-rules=MAP lan.test 127.0.0.1") as browser:
        context = await browser.new_context(viewport={"width": 1000, "height": 700})
        await context.grant_permissions(["clipboard-read", "clipboard-write"],
                                        origin=f"http://127.0.0.1:{server.port}")
        page = WebPage(await context.new_page())
        await page.page.goto(f"{origin}/r/lobby?name=lan")
        assert not await page.js("window.isSecureContext")
        assert await page.js("!document.querySelector('#join-insecure').hidden && "
                             "document.querySelector('#join-insecure').textContent.replace(/\\s+/g, ' ')") == (
            "This address cannot use your camera and microphone: browsers allow them only on https:// addresses "
            "and on localhost. You can still watch and chat; to be seen and heard, open the room through the "
            "server's https address or on localhost.")
        assert await page.js("document.querySelector('#join-button').textContent") == "Join to watch and chat"
        assert await page.js("document.querySelector('#invite-local').hidden")  # a link others can use

        await page.page.click("#copy-link")
        assert await page.js("document.querySelector('#copy-link').textContent") == "Copied"
        reader = await context.new_page()
        await reader.goto(f"http://127.0.0.1:{server.port}/")
        assert await reader.evaluate("navigator.clipboard.readText()") == f"{origin}/r/lobby"

        await page.page.click("#join-button")
        await page.until("document.querySelector('#session-status').dataset.state === 'connected'")
        await page.until("!document.querySelector('#call-view').hidden")
        assert (await page.js("document.querySelector('#device-note-text').textContent")).startswith(
            "This address cannot use the camera and microphone")
        assert await page.js("document.querySelector('#device-retry').hidden")
        assert page.errors == []


async def test_a_loopback_invite_link_says_it_only_works_here(server: RoomServer) -> None:
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.goto(f"http://127.0.0.1:{server.port}/r/lobby")
        note = await page.js("!document.querySelector('#invite-local').hidden && "
                             "document.querySelector('#invite-local').textContent.replace(/\\s+/g, ' ')")
        assert note and note.startswith("This link only works on this computer"), note
        async with RoomServer("127.0.0.1", 0, public_url="https://chat.example.org") as proxied:
            await page.page.goto(f"http://localhost:{proxied.port}/r/lobby")
            assert await page.js("document.querySelector('#invite-link').textContent") == \
                "https://chat.example.org/r/lobby"
            assert await page.js("document.querySelector('#invite-local').hidden")
        assert page.errors == []


# --- a phone, the composer, links, accessibility ---------------------------------------------------

TILES_JS = """() => [...document.querySelectorAll('.tile')].map(t => {
    const box = (e) => { const b = e.getBoundingClientRect(); return {left: b.left, top: b.top, right: b.right,
                                                                     bottom: b.bottom, width: b.width}; };
    const name = t.querySelector('.tile-name'), note = t.querySelector('.tile-note');
    return {tile: box(t), name: name.textContent, label: box(t.querySelector('.tile-label')),
            cut: name.scrollWidth > name.clientWidth + 1,
            note: t.querySelector('.tile-overlay').hidden ? null : box(note)};
})"""


async def test_a_phone_shows_two_columns_with_readable_names(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA at 390×844: six people gave three columns of ~105 px tiles, names cut to one letter, and the
    overlay text wrapped over the name label."""
    for name in ("christina", "bob", "chatter", "nocam", "silent"):
        await peers.join(name, start=False)
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                            is_mobile=True, has_touch=True)
        page = WebPage(await context.new_page())
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=webphone")
        await page.until("document.querySelectorAll('.tile').length === 6")
        await page.until(f"(({TILES_JS})()).every(t => t.note === null || t.note.width > 0)")
        tiles = await page.js(TILES_JS)
        columns = {round(t["tile"]["left"]) for t in tiles}
        assert len(columns) == 2, tiles
        for t in tiles:
            assert t["tile"]["width"] >= 160, t
            assert not t["cut"], t  # the whole name shows
            if t["note"] is not None:  # "not sharing video" sits above the label, inside the tile
                assert t["note"]["bottom"] <= t["label"]["top"] + 0.5, t
                assert t["tile"]["left"] <= t["note"]["left"] and t["note"]["right"] <= t["tile"]["right"], t
        assert await page.js("document.documentElement.scrollWidth") <= 390
        side = (await page.js(LAYOUT_JS))["side"]
        assert all(t["tile"]["bottom"] <= side["top"] for t in tiles), (tiles, side)  # none over the people

        # Two people: one column.
        for peer in peers.made[1:]:
            await peer.session.disconnect()
        await page.until("document.querySelectorAll('.tile').length === 2")
        await page.until(f"new Set((({TILES_JS})()).map(t => Math.round(t.tile.left))).size === 1")
        assert page.errors == []


SMALL_SCREEN_JS = """() => {
    const box = (e) => { const b = e.getBoundingClientRect(); return {left: b.left, top: b.top, right: b.right,
                                                                     bottom: b.bottom, height: b.height}; };
    const shown = (e) => e.getClientRects().length > 0 && box(e).height > 2;
    const view = box(document.querySelector('#call-view')), log = box(document.querySelector('#messages'));
    const inside = (b, outer) => b.top >= outer.top - 0.5 && b.bottom <= outer.bottom + 0.5;
    const warning = document.querySelector('#invite-local');
    return {
        topbar: box(document.querySelector('.topbar')).height,
        statusbar: box(document.querySelector('#statusbar')).height,
        buttons: [...document.querySelectorAll('#statusbar button')].map(box),
        view,
        tiles: [...document.querySelectorAll('.tile')].map(box),
        messagesInView: [...document.querySelectorAll('#messages .message')]
            .filter(m => inside(box(m), view) && inside(box(m), log)).length,
        composerInView: inside(box(document.querySelector('#text')), view)
            && inside(box(document.querySelector('#composer button')), view),
        copy: shown(document.querySelector('#copy-link')),
        link: shown(document.querySelector('#invite-link')),
        command: shown(document.querySelector('#invite-command')),
        warning: shown(warning) && warning.innerText.replace(/\\s+/g, ' '),
        warningCut: warning.scrollWidth > warning.clientWidth + 1,
        words: [...document.querySelectorAll('.status-text')].map(shown),
        page: document.documentElement.scrollWidth,
    };
}"""


async def test_a_small_screen_keeps_the_video_and_some_messages_in_view(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA at 360×640 and 640×360: the invite link, the "only works on this computer" warning and the
    status bar took ~220 px of 640, and a phone on its side had 141 px left for the call. Now the
    header is the room and Copy link (and the warning's first sentence), the status bar one line of
    buttons and dots, and the tiles, a few messages and the composer are all in view at once."""
    bot = await peers.join("bot", publish=True, view=(160, 120, 15))
    for n in range(4):
        await bot.room.send_message(f"line {n}")
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 360, "height": 640}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=phone")
        await page.until("document.querySelectorAll('#messages .message').length === 4")
        await wait_playing(page, "bot")
        for width, height, header in ((360, 640, 50), (640, 360, 36)):
            await page.page.set_viewport_size({"width": width, "height": height})
            layout = await page.settled(SMALL_SCREEN_JS)
            assert layout["topbar"] <= header and layout["statusbar"] <= 40, (width, layout)  # a line or two
            assert layout["copy"] and not layout["link"] and not layout["command"], (width, layout)
            assert layout["warning"] == "This link only works on this computer.", (width, layout)
            assert not layout["warningCut"], (width, layout)
            assert layout["words"] == [False, False, False], (width, layout)  # all connected: dots only
            assert len({round(b["top"]) for b in layout["buttons"]}) == 1, (width, layout)
            for tile in layout["tiles"]:  # both tiles whole, in view without scrolling, not tiny
                assert layout["view"]["top"] <= tile["top"] and tile["bottom"] <= layout["view"]["bottom"], layout
                assert tile["height"] >= 110, (width, layout)
            assert layout["messagesInView"] >= 3 and layout["composerInView"], (width, layout)
            assert layout["page"] <= width, (width, layout)
        # Something not connected says so in words, still within the window.
        await page.js("document.querySelector('#call-status').dataset.state = 'reconnecting'")
        layout = await page.js(SMALL_SCREEN_JS)
        assert layout["words"] == [False, True, False] and layout["page"] <= 640, layout

        # A desktop window keeps its header: the link, the terminal command, the whole warning, words.
        await page.js("document.querySelector('#call-status').dataset.state = 'connected'")
        await page.page.set_viewport_size({"width": 1280, "height": 720})
        layout = await page.settled(SMALL_SCREEN_JS)
        assert layout["link"] and layout["command"] and layout["words"] == [True, True, True], layout
        assert layout["warning"].startswith("This link only works on this computer. To invite others"), layout
        assert page.errors == []

SEND_BOX_JS = """() => {
    const box = (e) => { const b = e.getBoundingClientRect(); return {left: b.left, right: b.right}; };
    const side = document.querySelector('.side');
    return {send: box(document.querySelector('#composer button')), to: box(document.querySelector('#to')),
            side: box(side), sideOverflow: side.scrollWidth - side.clientWidth, window: window.innerWidth,
            page: document.documentElement.scrollWidth};
}"""


async def test_a_long_name_keeps_the_send_button_in_the_window(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA at 1280×800: a 32-character name in the people list, the messages and the "Send to" menu
    widened the side column past the window, and the Send button went off-screen."""
    long_name = "W" * 32
    wide = await peers.join(long_name, start=False)
    await wide.room.send_message("hi")
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 800}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=me")
        await page.until("document.querySelectorAll('#messages .message').length === 1")
        await page.page.select_option("#to", label=f"{long_name} (private)")
        for width, height in ((1280, 800), (360, 640)):
            await page.page.set_viewport_size({"width": width, "height": height})
            layout = await page.settled(SEND_BOX_JS)
            assert layout["sideOverflow"] <= 0 and layout["page"] <= width, (width, layout)
            assert layout["send"]["right"] <= layout["side"]["right"] <= width, (width, layout)
            assert layout["to"]["right"] <= layout["side"]["right"], (width, layout)
        # The whole name is still there to read (cut with an ellipsis, in full on hover).
        assert await page.js("document.querySelector('.message-from').title") == long_name
        assert page.errors == []


async def test_the_composer_keeps_lines_and_counts_characters_as_the_server_does(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: the composer was an <input>: pasted lines were joined, a 2100-character paste was cut to
    2000 without a word, and 1500 emoji were cut to 1000 (UTF-16 units, not characters)."""
    bob = await peers.join("bob", start=False)
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 720},
                                            permissions=["clipboard-read", "clipboard-write"])
        page = WebPage(await context.new_page())
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        assert await page.js("document.querySelector('#text').tagName") == "TEXTAREA"
        one_line = await page.js("document.querySelector('#text').offsetHeight")

        async def paste(text: str) -> None:
            await page.js(f"navigator.clipboard.writeText({json.dumps(text)})")
            await page.page.focus("#text")
            await page.page.keyboard.press("Control+V")

        async def sent() -> str:
            said = await bob.room_updates.wait_for(lambda u: u.event is RoomEvent.MESSAGE, timeout=5)
            bob.room_updates.items.clear()
            return str(said.message.text)

        # Shift+Enter is a new line, Enter sends; the box grows with the lines.
        await page.page.focus("#text")
        await page.page.keyboard.type("line one")
        await page.page.keyboard.press("Shift+Enter")
        await page.page.keyboard.type("line two")
        await page.page.keyboard.press("Shift+Enter")
        await page.page.keyboard.type("line three")
        assert await page.js(TEXT_JS) == "line one\nline two\nline three"
        assert await page.js("document.querySelector('#text').offsetHeight") > one_line + 20
        await page.page.keyboard.press("Enter")
        assert await sent() == "line one\nline two\nline three"
        await page.until(f"{TEXT_JS} === ''")
        assert await page.js("document.querySelector('#text').offsetHeight") == one_line

        # A pasted block keeps its lines.
        await paste("first\r\nsecond\n  indented third")
        assert await page.js(TEXT_JS) == "first\nsecond\n  indented third"
        await page.page.keyboard.press("Enter")
        assert await sent() == "first\nsecond\n  indented third"

        # 1500 emoji are 1500 characters to the server: all kept, sent whole.
        await paste("😀" * 1500)
        assert await page.js(f"[...{TEXT_JS}].length") == 1500
        assert await page.js("document.querySelector('#composer-note').textContent") == ""
        await page.page.keyboard.press("Enter")
        assert await sent() == "😀" * 1500

        # A paste past the limit is cut to fit, and says so.
        await paste("B" * 2100)
        assert await page.js(TEXT_JS) == "B" * 2000
        assert await page.js("document.querySelector('#composer-note').textContent") == \
            "A message holds at most 2000 characters: 100 characters were left out."
        await page.js("document.querySelector('#text').value = ''")
        await paste("x" * 10 + "😀" * 2100)
        assert await page.js(f"[...{TEXT_JS}].length") == 2000
        assert await page.js("document.querySelector('#composer-note').textContent") == \
            "A message holds at most 2000 characters: 110 characters were left out."
        await page.page.keyboard.press("Enter")
        assert await sent() == "x" * 10 + "😀" * 1990
        assert page.errors == []


async def test_links_in_messages_are_anchors_made_as_text(server: RoomServer, peers: Peers) -> None:  # noqa: F811
    bob = await peers.join("bob", start=False)
    text = ("docs at https://example.org/a?b=1&c=2. and (see http://x.test/p(1)) javascript:alert(1) "
            "<a href=\"https://evil.test\">x</a> https://")
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await bob.room.send_message(text)
        await page.until("document.querySelectorAll('#messages .message').length === 1")
        message = await page.js("""(() => { const m = document.querySelector('#messages .message-text');
            return {text: m.textContent, elements: m.querySelectorAll('*').length,
                    links: [...m.querySelectorAll('a')].map(a => ({href: a.getAttribute('href'), text: a.textContent,
                                                                    rel: a.rel, target: a.target}))}; })()""")
        assert message["text"] == text
        rel = "noopener noreferrer nofollow"
        assert message["links"] == [
            {"href": "https://example.org/a?b=1&c=2", "text": "https://example.org/a?b=1&c=2", "rel": rel,
             "target": "_blank"},
            {"href": "http://x.test/p(1)", "text": "http://x.test/p(1)", "rel": rel, "target": "_blank"},
            # The markup stays text; only the address in it is a link.
            {"href": "https://evil.test/", "text": "https://evil.test", "rel": rel, "target": "_blank"},
        ], message
        assert message["elements"] == 3  # the anchors alone: nothing made from the <a href> in the text
        assert page.errors == []


async def test_controls_people_and_tiles_for_keyboards_and_screen_readers(
        server: RoomServer, peers: Peers) -> None:  # noqa: F811
    """QA: the toggles changed label and aria-pressed together ("Unmute mic, pressed"), people could
    be clicked but not reached by keyboard, and tiles had no names for screen readers."""
    await peers.join("eve", start=False)
    async with chromium() as browser:
        page = WebPage(await browser.new_page(viewport={"width": 1280, "height": 720}))
        await page.join(f"http://127.0.0.1:{server.port}/r/call?name=carol")
        await page.page.click("#mic")
        await page.page.click("#cam")
        controls = page.page.locator("#statusbar .controls")
        assert (await controls.aria_snapshot()).splitlines() == [
            '- button "Mute mic" [pressed]', '- button "Camera off" [pressed]', '- button "Leave"']
        await page.page.click("#mic")
        assert (await controls.aria_snapshot()).splitlines() == [
            '- button "Mute mic"', '- button "Camera off" [pressed]', '- button "Leave"']

        # A person is a button: reached with Tab, Enter starts a private message.
        await page.page.focus("#people-heading")  # not focusable: Tab starts from here
        await page.js("document.querySelector('#people-heading').tabIndex = -1")
        await page.page.focus("#people-heading")
        await page.page.keyboard.press("Tab")
        assert await page.js("document.activeElement.closest('#people') !== null && "
                             "document.activeElement.querySelector('.person-name').textContent") == "eve"
        await page.page.keyboard.press("Enter")
        assert (await page.js(TO_JS))["label"] == "eve (private)"
        assert await page.js("document.activeElement.id") == "text"

        # Tiles are groups named after their person.
        await page.until("document.querySelectorAll('.tile').length === 2")
        assert await page.page.get_by_role("group", name="eve", exact=True).count() == 1
        assert await page.page.get_by_role("group", name="carol (you)", exact=True).count() == 1
        assert page.errors == []


# --- the landing form and error pages --------------------------------------------------------------

async def test_bad_room_and_name_on_the_landing_form_keep_what_was_typed(server: RoomServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as http:
        # A room URL that does not work: a favicon, and a link back to the form with the room filled in.
        async with http.get(f"{base}/r/a%20b") as response:
            body = await response.text()
            assert response.status == 400
            assert '<link rel="icon" href="../static/favicon.svg" type="image/svg+xml">' in body
            assert '<a href="../?room=a+b">Change the room name</a>' in body
        async with http.get(f"{base}/?room=a+b") as response:
            assert 'value="a b"' in await response.text()
        # The form itself, sent without its browser checks: shown again with the values and the reason.
        async with http.get(f"{base}/join?room=my+room&name=bob") as response:
            body = await response.text()
            assert response.status == 400 and 'value="my room"' in body and 'value="bob"' in body
            assert "That room name does not work: a room name must not contain spaces." in body
        async with http.get(f"{base}/join?room=ok&name=a%E2%80%AEb") as response:
            body = await response.text()
            assert response.status == 400 and 'value="ok"' in body and 'value="a\u202eb"' in body
            assert "That name can&#x27;t be used: a name must not contain the character U+202E" in body

    async with chromium() as browser:  # the browser refuses a space before sending anything
        page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
        await page.page.goto(f"{base}/")
        await page.page.fill("input[name=room]", "my room")
        await page.page.click("button[type=submit]")
        assert await page.js("document.querySelector('input[name=room]').validity.patternMismatch")
        assert page.page.url == f"{base}/"
        await page.page.fill("input[name=room]", "my-room")
        await page.page.click("button[type=submit]")
        await page.page.wait_for_url(f"{base}/r/my-room")
        assert page.errors == []


async def test_the_page_reads_a_typed_line_as_chatline_py_does(server: RoomServer) -> None:
    """The page's chatline.js is a second copy of the rules in tuichat/client/chatline.py (the page
    cannot run Python): the two are compared on the same lines, in a real browser."""
    from tuichat.client.chatline import parse_line

    lines = ["hi", "  indented", "/msg bob hi there", '/msg "Ann Lee" hi', "/quit", "  /exit  ", "/help",
             "//shrug it", "/MSG Bob Hi", "/Quit", "/quit\nbye all", "/msg\tbob tabbed", "/msg bob\nline two",
             "/msg", "/msg bob", "/msg  ", "/msgbob hi", "/frobnicate now", "/ text", "/", "/HELP me"]
    async with chromium() as browser:
        page = WebPage(await browser.new_page())
        await page.page.goto(f"http://127.0.0.1:{server.port}/r/call")
        read = await page.js(f"""import('./../static/chatline.js').then(({{ parseLine }}) =>
            {json.dumps(lines)}.map((line) => {{
                const parsed = parseLine(line);
                return [parsed.kind, parsed.text ?? "", parsed.name ?? "", parsed.problem ?? ""];
            }}))""")
    expected = [[p.kind.value, p.text, p.name, p.problem] for p in map(parse_line, lines)]
    assert dict(zip(lines, read, strict=True)) == dict(zip(lines, expected, strict=True))


async def test_the_page_matches_names_as_the_server_does(server: RoomServer) -> None:
    """`/msg NAME` in the page finds its person with chatline.js's nameKey, a copy of the server's
    name_key: the two are compared on the same names, in a real browser."""
    from tuichat.protocol.names import name_key

    names = ["Bob", "BOB", "ｂｏｂ", "𝐛𝐨𝐛", "José", "Jose\u0301", "Straße", "STRASSE", "❤\ufe0f fan", "❤ fan",
             "Sam\U0001F44D\U0001F3FD", "Sam\U0001F44D\U0001F3FF", "Sam\U0001F44D", "葛\U000e0100", "İstanbul"]
    async with chromium() as browser:
        page = WebPage(await browser.new_page())
        await page.page.goto(f"http://127.0.0.1:{server.port}/r/call")
        read = await page.js(f"""import('./../static/chatline.js').then(({{ nameKey }}) =>
            {json.dumps(names)}.map((name) => nameKey(name)))""")
    assert dict(zip(names, read, strict=True)) == {name: name_key(name) for name in names}
