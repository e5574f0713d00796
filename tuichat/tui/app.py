"""The terminal client: one screen with video, people, messages, input, status and invite."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.filter import Monochrome, NoColor
from textual.notifications import Notification, Notify, SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

from tuichat.client import RoomEvent, SessionOptions, SessionStatus, display_address
from tuichat.client.call import REJOIN_RESTART_REASON, CallEvent, CallStatus
from tuichat.client.chatline import PRIVATE_USAGE, LineKind, parse_line, private_line
from tuichat.client.stream import PlayStatus, PublishStatus
from tuichat.errors import CommandFailed, ConnectionFailed
from tuichat.protocol.limits import TEXT_MAX_LENGTH
from tuichat.protocol.messages import ErrorCode
from tuichat.render import ColorMode
from tuichat.tui.bridge import (
    DEFAULT_FPS,
    CallBridge,
    CallChanged,
    DeviceNotice,
    MediaOptions,
    RoomChanged,
    SessionChanged,
)
from tuichat.tui.direct import LAST_REPLIES_WAIT_S, TerminalWriter
from tuichat.tui.grays import FourGrays
from tuichat.tui.paste import paste_safe_driver
from tuichat.tui.safe_text import printable
from tuichat.tui.screens.help import HelpScreen
from tuichat.tui.snapshots import MessageView, PublishView, StreamView
from tuichat.tui.widgets import Composer, InviteLine, KeyBar, MessageLog, ParticipantList, StatusLine, VideoGrid
from tuichat.tui.widgets.composer import key_after_escape
from tuichat.tui.widgets.status import StatusPart
from tuichat.tui.widgets.video import PREVIEW_FPS, PREVIEW_THRESHOLD, THRESHOLD

log = logging.getLogger(__name__)

#: Message keys remembered to skip repeats after a reconnect; more than the server's history.
SHOWN_MESSAGES_KEPT = 500
#: A stopped stream's tile waits this long for the stream to come back while its person stays (a
#: media restart takes a second or two) before it leaves the grid.
STALL_GRACE_S = 6.0
#: The status line calls the terminal slow when it shows less than this share of the frames received.
SLOW_TERMINAL_SHARE = 0.8
#: Footer labels for narrow terminals (see ``KeyBar``): with them every key fits in 80 columns.
SHORT_KEY_LABELS = {"toggle_camera": "Cam", "toggle_self_view": "Self", "copy_invite": "Invite",
                    "toggle_video_only": "Video"}
#: Below ~64 columns the key bar leaves these out, first ones first (F1's help lists them all).
KEYS_DROPPED_FIRST = ("focus_next_participant", "copy_invite", "toggle_self_view", "toggle_video_only",
                      "toggle_preview", "toggle_camera", "toggle_mic")
#: How long a toast saying what a key switched to stays up (s).
STATE_TOAST_S = 2.0
#: A second bare ``q`` within this many seconds leaves the call.
QUIT_AGAIN_S = 2.0
#: Textual turns ESC+key into '^' and key when an escape sequence follows at once (see
#: ``ChatApp.on_event``): the two come from one read, this close together; a '^' is held this long
#: to see whether a key follows so, and only while cursor reports came this recently.
ESCAPE_REISSUE_GAP_S = 0.002
ESCAPE_REISSUE_HOLD_S = 0.02
REPLIES_FLOWING_S = 0.5
#: sshd sets these: the keys come through an ssh client, which reads "~." first on a line as its
#: escape (see ``ChatApp._ssh_escape``).
SSH_ENV = ("SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT")
_NEWLINE_KEYS = ("enter", "ctrl+j", "ctrl+m")
#: How often to check that the terminal is still there (see ``ChatApp._watch_terminal``).
TERMINAL_CHECK_S = 0.5
#: Blank lines before a message's first text (a paste's), dropped; the text's own indentation stays.
_BLANK_LINES_FIRST = re.compile(r"\A(?:[ \t]*\n)+")
#: After SIGTERM, how long the normal exit (leave the room, restore the terminal) may take before the
#: process leaves the room from another thread and ends anyway (a loop stuck writing to the terminal).
TERMINATE_GRACE_S = 8.0


class ChatApp(App[None]):
    """Keyboard first: function and Ctrl keys work while typing, letters once Esc has left the input."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "tuichat"
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f2", "toggle_mic", "Mic"),
        Binding("f3", "toggle_camera", "Camera"),
        Binding("f4", "toggle_preview", "Preview"),
        Binding("f5", "focus_next_participant", "Focus"),
        Binding("f6", "toggle_self_view", "Self-view"),
        Binding("f7", "copy_invite", "Copy invite"),
        Binding("f8", "toggle_video_only", "Video only"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("escape", "leave_input", "Leave input", show=False),
        Binding("question_mark", "help", "Help", show=False),
        Binding("i", "focus_input", "Type", show=False),
        Binding("m", "toggle_mic", "Mic", show=False),
        Binding("c", "toggle_camera", "Camera", show=False),
        Binding("p", "toggle_preview", "Preview", show=False),
        Binding("f", "focus_next_participant", "Focus", show=False),
        Binding("v", "toggle_self_view", "Self-view", show=False),
        Binding("y", "copy_invite", "Copy invite", show=False),
        Binding("t", "toggle_video_only", "Video only", show=False),
        Binding("q", "quit_twice", "Quit", show=False),
    ]
    # Small terminals (80×24 over SSH is common) give the video what the side panels would take:
    # a narrower people list below 100 columns and none below 64 (the status line keeps the head
    # count); below 30 rows the input loses its border and the invite line goes (F7 still copies it).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (64, "-medium"), (100, "-wide")]
    #: Under 13 rows the video and the message log cannot both have their minimum heights: the log
    #: goes and what it would show pops up, as in video only (F8).
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (13, "-short"), (30, "-tall")]
    #: Shown in the help screen, in this order, with both forms of each key; each description in
    #: `HELP_TEXT_CELLS` cells, so that the help fits an 80×24 terminal without scrolling.
    KEY_HELP = [
        ("F1  ?", "this help"),
        ("Enter", "send the message; on a name: start a private message"),
        ("Tab  Shift+Tab", "move between the input, the messages and the people list"),
        ("Esc  i", "leave the input line / go back to it (or type a letter)"),
        ("F2  m", "mute / unmute your microphone (shown beside your name)"),
        ("F3  c", "turn your camera off / on (shown beside your name)"),
        ("F4  p", "preview for thin links: smaller, slower video"),
        ("F5  f", "focus each participant full size in turn, then the grid"),
        ("F6  v", "show / hide your own camera (self-view)"),
        ("F7  y", "copy the invite command to the clipboard"),
        ("F8  t", "video only: hide messages and people (new ones pop up)"),
        ("PgUp PgDn Home End", "scroll the messages (when focused)"),
        ("Ctrl+P", "the command palette: every action by name"),
        ("Ctrl+Q  q q", "leave the room and quit (q: pressed twice)"),
    ]

    def __init__(self, url: str, user: str, room: str, *, session_options: SessionOptions | None = None,
                 media: MediaOptions | None = None, color_mode: ColorMode = ColorMode.TRUECOLOR,
                 invite_options: Sequence[str] = (), notices: Sequence[str] = ()) -> None:
        """``invite_options``: command-line options the invite command passes on (``--ca-file NAME``);
        ``notices``: said in the message log first (how the terminal was set up, when it matters)."""
        # ansi_color: palette colours go to the terminal as palette codes, not converted to RGB.
        super().__init__(ansi_color=color_mode is not ColorMode.TRUECOLOR)
        self.driver_class = paste_safe_driver(self.driver_class)  # a paste's ESC stays text
        if color_mode is ColorMode.COLOR16:
            # The palette's own colours on the terminal's background: the default theme's panels
            # came out bright black, under green, red and dim text (QA: hard to read).
            self.theme = "ansi-dark"  # app.tcss: the command palette's edges (black) are made visible
        if color_mode is ColorMode.MONO:
            # The interface in the video's four grays too (the theme's red and green came through);
            # in place of NO_COLOR's filter, which blanks the video where Textual paints it.
            self._filters = [f for f in self._filters if not isinstance(f, NoColor | Monochrome)]
            self._filters.append(FourGrays())
        self.media = media
        self.color_mode = color_mode
        self.preview = bool(media and media.preview)
        self.self_view = False
        self.video_only = False
        #: Tiles whose stream stopped while their person stayed: key → when the tile goes.
        self._stalled: dict[str, float] = {}
        self.streams: dict[str, StreamView] = {}
        self.published: PublishView | None = None
        self._view_timer: Timer | None = None
        #: The toast each toggling key showed last (see ``_state_toast``).
        self._state_toasts: dict[str, Notification] = {}
        #: The connection failure the message log has said last (each retry fails the same way).
        self._failure_logged: str | None = None
        #: When a bare ``q`` last asked to leave (``action_quit_twice``).
        self._quit_asked_at = -QUIT_AGAIN_S
        #: A '^' that may be Textual's rendering of ESC (``on_event``), and when the terminal
        #: last answered a frame's cursor query.
        self._held_caret: events.Key | None = None
        self._last_reply_at = -REPLIES_FLOWING_S
        #: Over SSH: the next key starts a line (as for the ssh client), and a '~' started this one.
        self._over_ssh = over_ssh(os.environ)
        self._line_start, self._line_tilde = True, False
        self.url = url
        self.user = user
        self.room_name = room
        self.exit_message = ""
        self.bridge = CallBridge(self, url, user, room, session_options, media)
        self.invite_address = display_address(url)
        self.invite_options = tuple(invite_options)
        self.notices = tuple(notices)
        self._shown_messages: dict[tuple[float, int], None] = {}  # insertion-ordered, bounded below
        self._has_joined = False
        #: Why we are out of the room with no attempt to come (a refused join, a server that is not
        #: tuichat): keys and messages say so instead of waiting for a call that will not start.
        self._out_for_good: str | None = None
        self._video_empty_text = "nobody is sharing video yet" if media else "video is off (chat only)"
        #: "Media connection lost" was said and "Media reconnected" not yet.
        self._media_restart_said = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="stage"):
                yield VideoGrid(id="video", color_mode=self.color_mode,
                                threshold=PREVIEW_THRESHOLD if self.preview else THRESHOLD,
                                empty_text=self._video_empty_text)
                yield MessageLog(id="log")
            with Vertical(id="side"):
                yield ParticipantList(id="people")
        # Focus must not select the draft: the next key would replace it (and a "/msg bob " prefilled
        # from the people list would be typed over, sending the private message to everyone).
        yield Composer((f"Message {self.room_name} as {self.user}  (F1 for help)",
                        f"Message {self.room_name}  (F1 for help)", "Message  (F1 for help)", "Message"),
                       id="composer", max_length=TEXT_MAX_LENGTH, select_on_focus=False)
        yield StatusLine(id="status")
        yield InviteLine(self.invite_address, self.room_name, self.invite_options, id="invite")
        yield KeyBar(SHORT_KEY_LABELS, KEYS_DROPPED_FIRST)

    def on_mount(self) -> None:
        self.title = f"tuichat · {self.room_name}"
        status = self.query_one(StatusLine)
        status.room = self.room_name
        if self.media is not None:
            self._update_media_status()  # "not in the call yet", until the call starts
        composer = self.query_one("#composer", Input)
        # A blinking cursor repaints the composer's three rows twice a second (~3.6 KB/s written to
        # a 190-column terminal, 1.5% of the video's budget): a steady one costs nothing.
        composer.cursor_blink = False
        composer.focus()
        for notice in self.notices:
            log.warning("%s", notice)
            self.query_one(MessageLog).add_notice(notice)
        self.query_one(MessageLog).add_notice(f"Joining {self.room_name} on {self.invite_address} as {self.user}…")
        self.bridge.start()
        terminal = _terminal_fd()
        if terminal is not None:
            threading.Thread(target=self._watch_terminal, args=(terminal,), name="tuichat-terminal-watch",
                             daemon=True).start()
        if not self.is_headless:
            self._handle_stop_signals(terminal)

    def _handle_stop_signals(self, terminal: int | None) -> None:
        """SIGTERM and SIGHUP leave the room like Ctrl+Q: Python's default ended the process on the
        spot, the others saw "connection lost" and the terminal stayed in the app's screen modes
        (alternate screen, mouse tracking, hidden cursor)."""
        loop = asyncio.get_running_loop()

        def terminate(signum: signal.Signals = signal.SIGTERM) -> None:
            log.warning("%s: leaving the room and quitting", signum.name)
            self.exit_message = f"tuichat: stopped by {signum.name}"
            threading.Thread(target=self._end_if_stuck, args=(128 + signum,),
                             name="tuichat-terminate", daemon=True).start()
            self.run_worker(self._quit_with(128 + signum), exclusive=True, group="quit")

        def hang_up() -> None:
            if terminal is not None and not os.isatty(terminal):  # the terminal window closed
                threading.Thread(target=self._leave_without_terminal, args=("the terminal hung up",),
                                 name="tuichat-hangup", daemon=True).start()
            else:  # `kill -HUP` with the terminal still there: quit normally, as SIGHUP (it said SIGTERM)
                terminate(signal.SIGHUP)

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signal.SIGTERM, terminate)
            loop.add_signal_handler(signal.SIGHUP, hang_up)

    async def _quit_with(self, return_code: int) -> None:
        """Leave the room, then end the app (which gives the terminal back)."""
        self.query_one(MessageLog).add_notice("Leaving…")
        writer = TerminalWriter.existing(self)
        if writer is not None:
            writer.stop()  # no more video frames, nor queries to answer
        await self.bridge.stop()
        if writer is not None:  # the terminal's last answers come to us, not to the shell after us
            deadline = time.monotonic() + LAST_REPLIES_WAIT_S
            while writer.unanswered() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self.exit(return_code=return_code)

    def _end_if_stuck(self, return_code: int) -> None:
        time.sleep(TERMINATE_GRACE_S)
        log.warning("the app did not end within %g s of SIGTERM: ending it", TERMINATE_GRACE_S)
        self.bridge.stop_now()
        logging.shutdown()
        os._exit(return_code)

    def _watch_terminal(self, fd: int) -> None:
        """Leave when the terminal is gone (an SSH session dropped, the tmux pane killed) and no
        SIGHUP came to end us (a parent such as make took it, or nohup)."""
        while not self.bridge.stopped:
            time.sleep(TERMINAL_CHECK_S)
            if os.isatty(fd):
                continue
            if self.bridge.stopped:  # quitting anyway: the app's own shutdown is under way
                return
            self._leave_without_terminal("the terminal went away")

    def _leave_without_terminal(self, why: str) -> None:
        """Textual cannot shut down without its terminal: its output thread died on the first failed
        write and its queue blocks the app's loop, while its input thread reads the hung-up
        terminal's end-of-file for ever. So this thread, not the app, leaves the room (the others
        see us go) and ends the process."""
        log.warning("%s: leaving the room", why)
        self.bridge.stop_now()  # waits for a leave already under way (SIGHUP and the watch both come)
        logging.shutdown()
        os._exit(1)

    def on_cursor_position(self, event: events.CursorPosition) -> None:
        """The terminal answered a video frame's query: it has caught up that far (see `TerminalWriter`)."""
        TerminalWriter.answered(self, event.x, event.y, arrived=event.time)
        self._last_reply_at = event.time

    async def on_unmount(self) -> None:
        if self._view_timer is not None:
            self._view_timer.stop()
        await self.bridge.stop()

    # --- events from the call --------------------------------------------------------------------

    def _ui_ready(self) -> bool:
        """False once shutdown began: messages the client thread queued before it stopped may still
        arrive after the widgets are gone, and must be dropped rather than crash the exit."""
        return self.is_running and not self.bridge.stopped and bool(self.query(VideoGrid))

    @on(SessionChanged)
    def _session_changed(self, event: SessionChanged) -> None:
        if not self._ui_ready():
            return
        status = self.query_one(StatusLine)
        status.status = event.status
        status.reason = event.reason
        status.retry_at = time.monotonic() + event.retry_in if event.retry_in is not None else None
        messages = self.query_one(MessageLog)
        if event.status is SessionStatus.DISCONNECTED and event.reason.startswith("connection lost: "):
            reason = event.reason.removeprefix("connection lost: ")
            messages.add_notice(f"Connection lost: {reason}. Reconnecting…", style="red")
            self._left_room()
        elif event.status is SessionStatus.DISCONNECTED and event.retry_in is not None and self._has_joined:
            # A reconnection attempt failed: why, once per reason (the status line counts down to the next).
            if event.reason != self._failure_logged:
                messages.add_notice(f"Still reconnecting: {event.reason}.", style="red")
                self._failure_logged = event.reason
        elif event.status is SessionStatus.FAILED or event.retry_in is not None:  # never in yet, or given up
            # Each attempt fails again every few seconds: the log says a reason once (the status
            # line counts down to the next attempt); 46 copies of it filled the log in 6 minutes.
            if event.reason != self._failure_logged:
                retry = " (retrying; the status line counts down)" if event.retry_in is not None else ""
                messages.add_notice(_sentence(event.reason) + retry, style="bold red")
                self._failure_logged = event.reason
            if not self._has_joined:  # said when quitting, as the reason for exit status 1
                self.exit_message = f"tuichat: never joined {self.room_name}: {event.reason}"
            if event.retry_in is None:
                self._out_of_room_for_good(event.reason)
                if not self._has_joined:
                    messages.add_notice("Ctrl+Q quits.", style="bold red")
                self._update_media_status()
        elif event.status is SessionStatus.ESTABLISHED and event.reason == "reconnected":
            messages.add_notice("Reconnected.", style="green")
        if event.status is SessionStatus.ESTABLISHED:
            self._failure_logged = None

    def _out_of_room_for_good(self, reason: str) -> None:
        """Refused, dropped or unreachable for good: nothing of a call that will not come (no "nobody
        is sharing video yet", no invite to a room we are not in: an unknown host kept both)."""
        self._out_for_good = reason
        self.query_one(VideoGrid).empty_text = f"not in {self.room_name}"
        self.query_one(VideoGrid).refresh()
        self._show_invite(False)

    def _show_invite(self, shown: bool) -> None:
        """The invite line, and F7 in the key bar with it: hiding only the line left "f7 Invite" in
        the footer after an unknown host or a refused join, for an invite there is not (F7 itself
        still answers, saying why there is nothing to copy)."""
        self.query_one(InviteLine).display = shown
        self.query_one(KeyBar).hide("copy_invite", not shown)

    def _left_room(self) -> None:
        """Out of the room: what the screen shows of it is as it was, and says so."""
        self.query_one(StatusLine).joined = False
        self.query_one(ParticipantList).set_stale(self._has_joined)  # never in: nothing is out of date
        if self.media is not None:
            self._refresh_tiles()
            self._update_media_status()

    # --- media ---------------------------------------------------------------------------------------

    @on(DeviceNotice)
    def _device_notice(self, event: DeviceNotice) -> None:
        if not self._ui_ready():
            return
        medium = {"camera": "video", "microphone": "audio", "speaker": "sound"}.get(event.kind, event.kind)
        tail = "you will hear nothing" if event.kind == "speaker" else f"receiving {medium} only"
        self.query_one(MessageLog).add_notice(f"{_sentence(event.reason.rstrip('.'))}; {tail}.", style="yellow")

    @on(CallChanged)
    def _call_changed(self, event: CallChanged) -> None:
        if not self._ui_ready():
            return
        self.published = event.published
        self.streams = {s.participant_id: s for s in event.streams if s.status is not PlayStatus.STOPPED}
        self._refresh_tiles()
        if self.self_view:  # F6 may have come before the camera was open
            if self.bridge.devices_known and not self.bridge.has_camera:
                self.self_view = False
                self.query_one(VideoGrid).remove_tile("self")
            else:
                self._show_self_view()
        if event.event is not None and event.status is CallStatus.FAILED:
            self.query_one(MessageLog).add_notice(f"Call failed: {event.reason}", style="bold red")
        self._note_media_restart(event)
        self._update_media_status()

    def _note_media_restart(self, event: CallChanged) -> None:
        """The media connection failed while the server connection held: say so in the log, once
        each way. Tiles went to "waiting for video…" and PUBLISHING left the status line, with no word
        of why; a rejoin after a drop is not said again (the session's notices cover it)."""
        if event.event is not CallEvent.STATUS:
            return
        log_widget = self.query_one(MessageLog)
        if (event.status is CallStatus.RECONNECTING and not self._media_restart_said
                and self.query_one(StatusLine).joined and event.reason != REJOIN_RESTART_REASON):
            log_widget.add_notice(f"Media connection lost ({event.reason}); reconnecting…", style="red")
            self._media_restart_said = True
        elif event.status is CallStatus.CONNECTED and self._media_restart_said:
            log_widget.add_notice("Media reconnected.", style="green")
            self._media_restart_said = False
        elif event.status in (CallStatus.FAILED, CallStatus.CLOSED):
            self._media_restart_said = False

    def _refresh_tiles_if_running(self) -> None:
        if self._ui_ready():  # a stall timer can outlive the widgets when the app quits
            self._refresh_tiles()

    def _refresh_tiles(self) -> None:
        """One tile per played stream: video while it plays and the camera is on, a note otherwise.

        A stopped stream's tile goes when its person leaves, or after `STALL_GRACE_S` if they stay:
        a media restart stops a stream for a moment, and its tile must not vanish and come back at
        another place in the grid (taking the focus with it). Tiles keep the room's order."""
        grid = self.query_one(VideoGrid)
        if self._out_for_good is not None:  # out of the room for good: no call, nothing to wait for
            for key in list(grid.tiles):  # (a refused rejoin left "reconnecting…" tiles for ever)
                grid.remove_tile(key)
            self._stalled.clear()
            self.self_view = False
            return
        people = {p.id: p for p in self.query_one(ParticipantList).participants}
        joined = self.query_one(StatusLine).joined
        stalled_note = "waiting for video…" if joined else "reconnecting…"
        now = time.monotonic()
        for key in [k for k in grid.tiles if k != "self" and k not in self.streams]:
            deadline = self._stalled.setdefault(key, now + STALL_GRACE_S)
            if key not in people or now >= deadline:
                del self._stalled[key]
                grid.remove_tile(key)
            elif grid.tiles[key].source is not None or grid.tiles[key].status != stalled_note:
                grid.set_tile(key, grid.tiles[key].name, None, stalled_note)
                self.set_timer(deadline - now + 0.05, self._refresh_tiles_if_running)
        for key in [k for k in self._stalled if k in self.streams]:
            del self._stalled[key]
        for stream in self.streams.values():
            person = people.get(stream.participant_id)
            camera_off = person is not None and (person.video_muted or not person.video)
            muted = person is not None and person.audio and person.audio_muted
            if not joined:
                grid.set_tile(stream.participant_id, stream.name, None, "reconnecting…")
            elif stream.status is PlayStatus.PLAYING and not camera_off:
                grid.set_tile(stream.participant_id, stream.name, stream.frames, _stream_label(stream), muted=muted)
            else:
                # Someone with no camera cannot turn it on: "camera off" would say they could.
                no_camera = person is not None and not person.video
                note = ("no camera" if no_camera else "camera off") if camera_off else (
                    stream.reason or stream.status.name.lower())
                grid.set_tile(stream.participant_id, stream.name, None, note, muted=muted)
        grid.set_order([p.id for p in people.values() if not p.is_self] + ["self"])

    def _update_media_status(self) -> None:
        status = self.query_one(StatusLine)
        bridge = self.bridge
        if self._out_for_good is not None:
            status.publish = StatusPart()  # the status line's reason says why there is no call
        elif bridge.devices_known:
            status.publish = _publish_summary(self.published, self.preview, bridge.has_mic, bridge.has_camera,
                                              busy=machine_busy())
        else:  # not in the call yet: say what it will start with
            media = self.media
            mic = "no mic" if media and media.mic == "none" else (
                "mic muted" if bridge.start_muted["audio"] else "mic on")
            cam = "no cam" if media and media.camera == "none" else (
                "cam off" if bridge.start_muted["video"] else "cam on")
            # In the room, the devices still opening (a camera or PortAudio can take seconds).
            state = "opening devices…" if status.joined else "not in the call yet"
            status.publish = StatusPart(f"{mic} · {cam} · {state}", state, **_device_forms(mic, cam))
        grid = self.query_one(VideoGrid)
        if not status.joined:  # nothing plays while we are out of the room
            status.playing = StatusPart()
            return
        terminal_fps = grid.terminal_fps()
        status.playing = _playing_summary(self.streams, terminal_fps, self.preview, grid.focused_key,
                                          busy=terminal_fps is not None and machine_busy())

    @on(VideoGrid.ViewChanged)
    def _view_changed(self, event: VideoGrid.ViewChanged) -> None:
        # Debounced: a terminal being dragged to a new size sends many resizes.
        if self._view_timer is not None:
            self._view_timer.stop()
        self._view_timer = self.set_timer(0.25, self._announce_view)

    def _announce_view(self) -> None:
        if not self._ui_ready():  # the debounce timer may outlive the widgets
            return
        grid = self.query_one(VideoGrid)
        width, height = grid.view_box()
        focused = grid.focused_key
        hidden = tuple(k for k in grid.tiles if focused is not None and k not in (focused, "self"))
        # Our own picture (self-view) is not fetched from the server: focused, it only hides the others.
        participant = None if focused == "self" else focused
        self._call_bridge(self.bridge.set_view(width, height, self.preview, participant, hidden))

    @work(group="media")
    async def _call_bridge(self, coroutine: Coroutine[Any, Any, object]) -> None:
        try:
            await self.bridge.run(coroutine)
        except (CommandFailed, ConnectionFailed) as exc:
            log.info("media command failed: %s", exc)

    @on(RoomChanged)
    def _room_changed(self, event: RoomChanged) -> None:
        if not self._ui_ready():
            return
        messages = self.query_one(MessageLog)
        people = self.query_one(ParticipantList)
        status = self.query_one(StatusLine)
        if event.event is RoomEvent.FAILED:
            self._out_of_room_for_good(event.reason)
            self._left_room()
            status.status = SessionStatus.FAILED
            status.reason = event.reason
            verb = "Dropped from" if self._has_joined else "Could not join"
            messages.add_notice(f"{verb} {self.room_name}: {event.reason.rstrip('.')}. {_next_step(event.code)}",
                                style="bold red")
            self.exit_message = f"tuichat: {event.reason}"
            return
        if event.event is RoomEvent.STATE:  # (re)joined: the room as it is now
            if self._out_for_good is not None:  # in after all: what a refusal took away comes back
                self.query_one(VideoGrid).empty_text = self._video_empty_text
                self._show_invite(True)
            self._out_for_good = None
            status.joined = True
            people.set_stale(False)
        people.show(event.participants)
        status.count = len(event.participants)
        if self.media is not None:
            self._refresh_tiles()
            if event.event is RoomEvent.STATE:
                self._update_media_status()  # in the room now: the devices are opening
        if event.event is RoomEvent.STATE:
            self.exit_message = ""  # joined after all: nothing failed
            if event.public_url:
                self.query_one(InviteLine).set_public_url(event.public_url)
            # After a reconnect STATE comes again: show only history this log has not shown yet.
            for message in event.history:
                self._show_message(message)
            others = [p.name for p in event.participants if not p.is_self]
            here = ", ".join(others) if others else "nobody else yet"
            first = not self._has_joined
            self._has_joined = True
            if first and not others:
                self._say_the_room_is_new()
            else:
                messages.add_notice(f"You {'joined' if first else 'rejoined'} {self.room_name}. Here: {here}.",
                                    style="green")
        elif event.event is RoomEvent.JOINED and event.participant:
            messages.add_notice(f"{event.participant.name} joined.")
            if self._log_hidden():
                self._pop_up(f"{event.participant.name} joined.", timeout=3)
        elif event.event is RoomEvent.LEFT and event.participant:
            why = f" ({event.reason})" if event.reason and event.reason != "left" else ""
            messages.add_notice(f"{event.participant.name} left{why}.")
            if self._log_hidden():
                self._pop_up(f"{event.participant.name} left{why}.", timeout=3)
        elif event.event is RoomEvent.MESSAGE and event.message:
            self._show_message(event.message)

    def _say_the_room_is_new(self) -> None:
        """Alone on joining: the server made the room for us (rooms are made on first join and
        dropped when empty), so a mistyped name silently made a new, empty room. Said from the
        STATE alone (nobody else in it), in the join's own line: a second line pushed the join out
        of a short log at once, under the device notices that follow."""
        note = (f"You joined {self.room_name}, a new room: nobody else is here. Check its name if you "
                "expected someone; F7 copies the invite for others to join.")
        self.query_one(MessageLog).add_notice(note, style="green")
        if self._log_hidden():
            self._pop_up(note, timeout=8)

    def _show_message(self, message: MessageView) -> None:
        key = (message.timestamp, message.id)
        if key not in self._shown_messages:
            self._shown_messages[key] = None
            if len(self._shown_messages) > SHOWN_MESSAGES_KEPT:
                del self._shown_messages[next(iter(self._shown_messages))]
            self.query_one(MessageLog).add_message(message)
            if self._log_hidden() and not message.sender_is_self:
                self._pop_up(f"{message.sender}: {message.text}",
                             title="private message" if message.private else "")

    # --- input -----------------------------------------------------------------------------------

    @on(Input.Submitted, "#composer")
    def _submitted(self, event: Input.Submitted) -> None:
        # The composer is already empty (see Composer): what was sent is in the event. Spaces that
        # start it stay (a pasted snippet's indentation), as the bot keeps them; blank lines go.
        text = _BLANK_LINES_FIRST.sub("", Composer.text_of(event.value).rstrip())
        if not text.strip():
            return
        line = parse_line(text)
        if line.kind is LineKind.TEXT:
            self._send(line.text, None, text)
        elif line.kind is LineKind.PRIVATE:
            self._send(line.text, line.name, text)
        elif line.kind is LineKind.QUIT:
            self.run_worker(self.action_quit())
        elif line.kind is LineKind.HELP:
            self.action_help()
        else:
            problem = line.problem[:1].upper() + line.problem[1:]
            hint = "" if line.problem == PRIVATE_USAGE else "; /help lists them"
            self.query_one(MessageLog).add_notice(f"{problem}{hint}.", style="yellow")
            self._give_back(text)

    def _give_back(self, text: str) -> None:
        """Put text that was not sent back in the input (unless something new is being typed there)."""
        composer = self.query_one("#composer", Composer)
        if not composer.value:
            composer.message = text

    @work(group="send")
    async def _send(self, text: str, to_name: str | None, typed: str) -> None:
        """Send ``text``; if it cannot go, the line comes back as ``typed`` (``//shrug`` came back as
        ``/shrug``, a command the next Enter refused: QA)."""
        try:
            if self._out_for_good is not None:
                raise ConnectionFailed(f"you are not in {self.room_name}: {self._out_for_good}. Ctrl+Q quits")
            await self.bridge.send_message(text, to_name)
        except (CommandFailed, ConnectionFailed) as exc:
            reason = exc.reason if isinstance(exc, CommandFailed) else str(exc)
            self.query_one(MessageLog).add_notice(f"Not sent: {reason}", style="bold red")
            self._give_back(typed)

    @on(ParticipantList.PrivateMessageRequested)
    def _private_message(self, event: ParticipantList.PrivateMessageRequested) -> None:
        composer = self.query_one("#composer", Input)
        composer.value = private_line(event.name, "")
        composer.focus()
        composer.cursor_position = len(composer.value)

    # --- actions ---------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) offers every tuichat action next to Textual's own."""
        yield SystemCommand("Mute or unmute microphone", "F2: the room sees it beside your name",
                            self.action_toggle_mic)
        yield SystemCommand("Camera off or on", "F3: the room sees it beside your name", self.action_toggle_camera)
        yield SystemCommand("Low-bandwidth preview", "F4: smaller, slower video for thin links",
                            self.action_toggle_preview)
        yield SystemCommand("Focus next participant", "F5: one participant full size, then the grid",
                            self.action_focus_next_participant)
        yield SystemCommand("Self-view", "F6: show or hide your own camera", self.action_toggle_self_view)
        yield SystemCommand("Copy invite", "F7: the command a second person types to join",
                            self.action_copy_invite)
        yield SystemCommand("Video only", "F8: hide the messages and people; new messages pop up",
                            self.action_toggle_video_only)
        yield SystemCommand("Keys and commands", "F1: every key binding", self.action_help)
        yield SystemCommand("Leave and quit", "Ctrl+Q: leave the room and quit", self.action_quit)
        # None of Textual's own: "Keys" would be a second help; "Maximize" filled the screen with the
        # input line and hid the call; "Screenshot" saves an SVG without the video (drawn straight to
        # the terminal); our quit leaves the room first; "Theme" turned the panels light around a
        # video area, status colours and notes made for a dark screen (half light, half dark).
        dropped = {"Keys", "Maximize", "Minimize", "Screenshot", "Quit", "Theme"}
        yield from (command for command in super().get_system_commands(screen) if command.title not in dropped)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.KEY_HELP))

    def action_leave_input(self) -> None:
        """Esc leaves the input line; out of it, Esc does nothing, so Esc Esc m mutes however fast
        the keys come (a second Esc that went back to the input typed the m when slow, muted when
        read together: QA)."""
        if self.focused is self.query_one("#composer", Input):
            people = self.query_one(ParticipantList)
            if people in self.screen.focus_chain:
                people.focus()
            else:  # hidden (video only, a narrow terminal): focus nothing, so the letter keys work
                self.screen.set_focus(None)  # (Enter on the unseen list started a private message)

    @on(Composer.EscapeThen)
    def _escape_then(self, event: Composer.EscapeThen) -> None:
        # Leaving the input moves focus in a callback: the key goes after it, to the new focus.
        self.action_leave_input()
        self.call_later(self.post_message, event.key)

    def on_key(self, event: events.Key) -> None:
        # Out of the input, Esc does nothing: an Esc read together with a key (as Alt+key) is the key.
        if (key := key_after_escape(event)) is not None:
            event.stop()
            self.post_message(key)
            return
        # Out of the input, a character that is no shortcut starts a message (it was lost: QA).
        if (event.is_printable and event.character and event.key not in _SHORTCUT_KEYS
                and (composer := self._input_to_type_into()) is not None):
            event.stop()
            composer.focus()
            composer.insert_text_at_cursor(event.character)

    def on_paste(self, event: events.Paste) -> None:
        """A paste out of the input goes into it (it was lost without a word: QA)."""
        if (composer := self._input_to_type_into()) is not None:
            event.stop()
            composer.focus()
            composer.post_message(events.Paste(event.text))

    def _input_to_type_into(self) -> Composer | None:
        """The input line, when typing out of it should go there: on the main screen (not under
        help or the palette), with the input shown but not focused."""
        composer = self.query_one("#composer", Composer)
        if self.screen is self.screen_stack[0] and self.focused is not composer and composer in self.screen.focus_chain:
            return composer
        return None

    def action_focus_input(self) -> None:
        self.query_one("#composer", Input).focus()

    @work(group="media", exclusive=False)
    async def action_toggle_mic(self) -> None:
        await self._switch_device("microphone")

    @work(group="media", exclusive=False)
    async def action_toggle_camera(self) -> None:
        muted = await self._switch_device("camera")
        if muted is not None and self.self_view:
            self._show_self_view(camera_off=muted)

    async def _switch_device(self, device: str) -> bool | None:
        """Mute / unmute the microphone or turn the camera off / on, and say so; the new muted state,
        or None when there is no such device."""
        mic = device == "microphone"
        bridge = self.bridge
        if self._said_not_in_a_call():
            return None
        option = "--mic" if mic else "--camera"
        if self.media is not None and getattr(self.media, "mic" if mic else "camera") == "none":
            self.notify(f"There is no {device}: the call started with {option} none.", severity="warning")
            return None
        try:
            muted = await bridge.run(bridge.toggle_mic() if mic else bridge.toggle_camera())
        except (CommandFailed, ConnectionFailed) as exc:  # muted or not, telling the room failed
            self.notify(f"The room was not told: {exc}", severity="warning")
            published = self.published
            muted = None if published is None else published.audio_muted if mic else published.video_muted
        if muted is None:
            what = "unmute" if mic else "turn on"
            self.notify(f"There is no {device} to {what} (see the message log).", severity="warning")
        else:
            on, off = ("Microphone on", "Microphone muted") if mic else ("Camera on", "Camera off")
            self._state_toast(device, (off if muted else on) + self._before_call())
        self._update_media_status()
        return muted

    def _said_not_in_a_call(self) -> bool:
        """Out of the room for good (a refused join or rejoin): say so for a key that needs a call."""
        if self._out_for_good is None:
            return False
        self.notify(f"Not in a call: {self._out_for_good}", severity="warning")
        return True

    def _before_call(self) -> str:
        return "" if self.bridge.devices_known else " when the call starts"

    def action_toggle_preview(self) -> None:
        self.preview = not self.preview
        grid = self.query_one(VideoGrid)
        grid.set_fps(PREVIEW_FPS if self.preview else (self.media.fps if self.media else DEFAULT_FPS))
        grid.set_threshold(PREVIEW_THRESHOLD if self.preview else THRESHOLD)
        self._state_toast("preview", "Low-bandwidth preview on" if self.preview else "Preview off: full quality")
        self._announce_view()
        self._update_media_status()

    def action_focus_next_participant(self) -> None:
        focused = self.query_one(VideoGrid).focus_next()
        tile = self.query_one(VideoGrid).tiles.get(focused) if focused else None
        self._state_toast("focus", f"Focused on {tile.name}" if tile else "Showing everyone")

    def action_toggle_self_view(self) -> None:
        if self._said_not_in_a_call():  # as F2 and F3: a tile would wait for a camera for ever
            return
        if not self.self_view and self._no_camera_to_show():
            return
        self.self_view = not self.self_view
        grid = self.query_one(VideoGrid)
        if self.self_view:
            self._show_self_view()
        else:
            grid.remove_tile("self")
        focused = grid.tiles.get(grid.focused_key) if grid.focused_key not in (None, "self") else None
        if focused is not None:  # QA: F6 after F5 seemed to do nothing (the tile is there, not shown)
            self._state_toast("self-view", f"Self-view {'on' if self.self_view else 'off'}: the video is "
                                           f"focused on {focused.name} (F5 goes on to the others)")

    def _no_camera_to_show(self) -> bool:
        """Say so when there is no camera at all: an empty "no camera" tile only shrank everyone
        else's (QA), and F3 in the same state already said why."""
        if self.media is not None and self.media.camera == "none":
            self.notify("No self-view: there is no camera (the call started with --camera none).",
                        severity="warning")
            return True
        if self.bridge.devices_known and not self.bridge.has_camera:
            self.notify("No self-view: no camera could be opened (see the message log).", severity="warning")
            return True
        return False

    def _show_self_view(self, camera_off: bool | None = None) -> None:
        tap = self.bridge.self_view
        muted = bool(self.published and self.published.video_muted) if camera_off is None else camera_off
        source = tap if tap is not None and not muted else None
        note = "self-view" if source else (
            "camera off" if tap is not None else "no camera" if self.bridge.devices_known else "starting camera…")
        self.query_one(VideoGrid).set_tile("self", f"{self.user} (you)", source, note)

    def _log_hidden(self) -> bool:
        """The message log is not on screen (video only, or a terminal too short for it)."""
        return self.video_only or self.size.height < self.VERTICAL_BREAKPOINTS[1][0]

    def action_toggle_video_only(self) -> None:
        """Give the video the whole window; what would land in the hidden log pops up instead."""
        self.video_only = not self.video_only
        self.set_class(self.video_only, "-video-only")
        if self.video_only and self.focused is not None and self.focused.id != "composer":
            # The focused panel is hidden. Not to the input: the letter keys must go on working
            # (a second 't' was typed into it instead of bringing the panels back).
            self.screen.set_focus(None)
        self._state_toast("video-only", "Video only: messages pop up here (F8 brings the panels back)"
                          if self.video_only else "Messages and people are back")

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every toast as plain, printable text, whatever the caller: most carry a name, a room or
        the server's words, and one with '[/]' in it crashed the app as bad markup (a refused join
        as "x[/]y", then F3), while ESC and bidi controls in a name reached the terminal (F5)."""
        super().notify(printable(message, keep_newlines=True), title=printable(title), severity=severity,
                       timeout=timeout, markup=False)

    def _state_toast(self, key: str, text: str) -> None:
        """A short toast saying what a key switched to; it replaces the one the same key showed before,
        so a burst of presses leaves one toast with the final state, not a stack of them."""
        previous = self._state_toasts.get(key)
        if previous is not None:
            self._unnotify(previous)  # Textual has no public way to take one toast back (8.x)
        notification = Notification(printable(text), timeout=STATE_TOAST_S, markup=False)
        self._state_toasts[key] = notification
        self.post_message(Notify(notification))

    def _pop_up(self, text: str, *, title: str = "", timeout: float = 6) -> None:
        """A toast with others' text in it (``notify`` makes every toast printable and plain)."""
        self.notify(text, title=title, timeout=timeout)

    def action_copy_invite(self) -> None:
        if self._out_for_good is not None:
            self._state_toast("invite", f"Not in {printable(self.room_name)}: no invite to copy")
            return
        invite = self.query_one(InviteLine)
        text = f"{invite.command}\n# or in a browser: {invite.link}"  # a comment: safe to paste into a shell
        self.copy_to_clipboard(text)
        self.notify(text, title="Invite copied", timeout=4)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Paste):
            self._line_start = self._line_tilde = False  # what ssh sent last was the paste
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
            return
        # Esc and a key read together, with a video frame's cursor report right behind them, reach us
        # as '^' and the key: Textual's parser, waiting to see whether ESC+key starts a longer
        # sequence, meets the report's ESC and reissues the pair so (it typed "^q" into the input).
        # Such a pair comes from one read, microseconds apart, which a '^' typed by hand never does:
        # it is turned back into the Alt+key that ESC+key reads as. A '^' is held that briefly, and
        # only while the terminal answers frames (nothing else sends us escape sequences unasked).
        caret, self._held_caret = self._held_caret, None
        if caret is not None:
            if (event.time - caret.time <= ESCAPE_REISSUE_GAP_S and event.is_printable and event.character
                    and len(event.character) == 1 and "+" not in event.key and event.key != caret.key):
                event = events.Key(f"alt+{event.key}", event.character)
            else:
                await self._dispatch_key(caret)
        elif event.key == "circumflex_accent" and event.time - self._last_reply_at <= REPLIES_FLOWING_S:
            self._held_caret = event
            self.set_timer(ESCAPE_REISSUE_HOLD_S, self._release_caret)
            return
        await self._dispatch_key(event)

    async def _dispatch_key(self, key: events.Key) -> None:
        if self._over_ssh and self._ssh_escape(key):
            key.stop()
            log.warning("'~.' first on a line: ssh's escape came through as typing; leaving the room")
            self.exit_message = "tuichat: ~. came through ssh as typing: left the room and quit"
            await self._quit_with(0)
            return
        if key.key != "q":
            self._quit_asked_at = -QUIT_AGAIN_S  # only q, q in a row leaves
        await super().on_event(key)

    def _ssh_escape(self, key: events.Key) -> bool:
        """Whether this key ends "~." typed first on a line: ssh's escape to disconnect, which the ssh
        client did not take. It reads '~' as the escape only right after a newline in what it sends,
        and the terminal's answers to the video's cursor queries (15 a second, up the same connection
        as the keys) nearly always came between the Enter and the '~': QA typed Enter ~ . five times
        over a real sshd, and each sent "~." to the room instead of leaving. Leaving is what the
        person asked for (the session then ends as ssh's own escape would have ended it). A message
        that starts with "~." is still typed after another key (a space, then Backspace) or pasted."""
        char = key.character if key.is_printable else None
        if key.key in _NEWLINE_KEYS:
            self._line_start, self._line_tilde = True, False
            return False
        if self._line_tilde and char == ".":
            return True
        self._line_tilde = self._line_start and char == "~"
        self._line_start = False
        return False

    async def _release_caret(self) -> None:
        """No key came with the held '^': it was typed."""
        caret, self._held_caret = self._held_caret, None
        if caret is not None:
            await self._dispatch_key(caret)

    def action_help_quit(self) -> None:
        """Ctrl+C (which copies in an input): Textual's own note read "Do you want to quit? Press
        ctrl+q to quit the app", unlike the rest of the app; one toast however often it is pressed."""
        self._state_toast("quit", "Ctrl+C copies. Ctrl+Q leaves the call and quits.")

    async def action_quit_twice(self) -> None:
        """Bare ``q`` leaves only when pressed twice in a row: someone who tabbed out of the input and
        goes on typing must not drop out of a call at the first word with a q in it."""
        now = time.monotonic()
        if now - self._quit_asked_at <= QUIT_AGAIN_S:
            await self.action_quit()
            return
        self._quit_asked_at = now
        self._state_toast("quit", "Press q again to leave the call (Ctrl+Q leaves at once)")

    async def action_quit(self) -> None:
        # 1 when the room was never joined or the server dropped us for good (as README says): also
        # when we quit while still connecting (it was 0 and said nothing; 1 while it retried).
        if not self._has_joined and not self.exit_message:
            reason = self.query_one(StatusLine).reason
            doing = reason if reason.startswith(("connecting", "reconnecting")) else "joining"
            self.exit_message = f"tuichat: never joined {self.room_name}: quit while {doing}"
        await self._quit_with(1 if self.exit_message else 0)


#: The keys the app binds: out of the input, any other character goes to the input (``on_key``).
_SHORTCUT_KEYS = frozenset(binding.key for binding in ChatApp.BINDINGS if isinstance(binding, Binding))


def _sentence(reason: str) -> str:
    """A reason from below ("cannot reach ws://…") as a log line of its own starts with a capital,
    like the app's other lines ("Could not join…", "Connection lost:…")."""
    return reason[:1].upper() + reason[1:]


def _next_step(code: str) -> str:
    """What to do after the room refused us, by the server's reason."""
    if code in (ErrorCode.NAME_TAKEN, ErrorCode.INVALID_NAME):
        return "Ctrl+Q quits; then connect again with another name."
    if code == ErrorCode.ROOM_FULL:
        return "Ctrl+Q quits; try again when someone has left, or choose another room."
    if code == ErrorCode.INVALID_ROOM:
        return "Ctrl+Q quits; then connect again with another room name."
    return "Ctrl+Q quits."


def _stream_label(stream: StreamView) -> str:
    parts = []
    if stream.size:
        parts.append(f"{stream.size[0]}×{stream.size[1]}")
    parts.append(f"{stream.fps:.0f} fps")
    if stream.kbps is not None:
        parts.append(f"{stream.kbps:.0f} kbps")
    return " ".join(parts)


def over_ssh(environ: Mapping[str, str]) -> bool:
    """Whether we run in an SSH session (sshd sets these variables)."""
    return any(environ.get(name) for name in SSH_ENV)


def _terminal_fd() -> int | None:
    """The terminal we read keys from, if there is one (not under ``run_test`` or a pipe)."""
    try:
        fd = sys.__stdin__.fileno() if sys.__stdin__ is not None else -1
    except (OSError, ValueError):
        return None
    return fd if fd >= 0 and os.isatty(fd) else None


def machine_busy(loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg) -> bool:
    """More runnable processes than cores over the last minute: a late frame or a low bandwidth
    estimate may be this machine's doing, not the link's (both look the same from here)."""
    try:
        return loadavg()[0] > (os.cpu_count() or 1)
    except OSError:  # no load average on this system
        return False


def _publish_summary(published: PublishView | None, preview: bool, has_mic: bool, has_camera: bool,
                     *, busy: bool = False) -> StatusPart:
    """``mic on · cam on · PUBLISHING · PREVIEW``; short: ``PUBLISHING · PREVIEW``."""
    mic = "no mic" if not has_mic else ("mic muted" if published and published.audio_muted else "mic on")
    cam = "no cam" if not has_camera else ("cam off" if published and published.video_muted else "cam on")
    state = short_state = ""
    if not has_mic and not has_camera:
        state = short_state = "receive-only"
    elif published is not None and published.status is not PublishStatus.PENDING:
        state = short_state = published.status.name
        if published.uplink_limited and published.size and has_camera and not published.video_muted:
            cause = "thin uplink or busy CPU" if busy else "thin uplink"
            state += f" {published.size[0]}×{published.size[1]} ({cause})"
            short_state += " (thin uplink)"
    preview_part = ["PREVIEW"] if preview else []
    return StatusPart(" · ".join([mic, cam, *([state] if state else []), *preview_part]),
                      " · ".join([*([short_state] if short_state else []), *preview_part]),
                      **_device_forms(mic, cam))


class _DeviceForms(TypedDict):
    devices: str
    off: str


def _device_forms(mic: str, cam: str) -> _DeviceForms:
    """The publish part's ``devices`` ("mic muted · cam on") and ``off`` ("mic off") forms."""
    off = [word for word, is_off in (("mic off", mic == "mic muted"), ("cam off", cam == "cam off")) if is_off]
    return {"devices": f"{mic} · {cam}", "off": " · ".join(off)}


def _playing_summary(streams: dict[str, StreamView], terminal_fps: float | None = None,
                     preview: bool = False, focused: str | None = None, *, busy: bool = False) -> StatusPart:
    """``bob +1 PLAYING 120×90 15 fps 230 kbps (all 410 kbps)``; short: ``bob +1 PLAYING``.

    The focused participant (F5) comes first.

    ``terminal_fps``: the terminal cannot take every frame (a slow link): say what it shows, and
    how to send it less; ``busy``: this machine is loaded, which can be the cause too.
    """
    playing = sorted((s for s in streams.values() if s.status is PlayStatus.PLAYING),
                     key=lambda s: s.participant_id != focused)
    if playing:
        first = playing[0]
        more = f" +{len(playing) - 1}" if len(playing) > 1 else ""
        short = f"{first.name}{more} PLAYING"
        full = f"{short} {_stream_label(first)}"
        if len(playing) > 1:
            full += f" (all {sum(s.kbps or 0 for s in playing):.0f} kbps)"
        # Only when it shows fewer frames than arrive: frames held for a moment while the terminal
        # keeps up are no news (it said "slow terminal link: 16 fps shown" of a 15 fps stream).
        received = max((s.fps or 0.0) for s in playing)
        between: tuple[str, ...] = ()
        if terminal_fps is not None and terminal_fps < SLOW_TERMINAL_SHARE * received:
            hint = "" if preview else ", F4 preview"
            cause = "busy CPU or slow terminal link" if busy else "slow terminal link"
            shown = f"{terminal_fps:.0f} of {received:.0f} fps shown"
            full += f" · {cause}: {shown}{hint}"
            # Narrower: the stream's details go first, then the cause, then the remedy (QA: the
            # first step took both, and over SSH the line was nearly always that narrow).
            between = (f"{short} · {shown}: {cause}{hint}", f"{short} · {shown}{hint}")
            short += f" · {shown}"
        return StatusPart(full, short, between=between)
    if streams:
        first = next(iter(streams.values()))
        text = f"{first.name} {first.status.name}"
        return StatusPart(text, text)
    return StatusPart()
