"""The terminal client: one screen with video, people, messages, input, status and invite."""

from __future__ import annotations

import logging
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input

from tuichat.client import RoomEvent, SessionOptions, SessionStatus, display_address
from tuichat.errors import CommandFailed, ConnectionFailed
from tuichat.protocol.limits import TEXT_MAX_LENGTH
from tuichat.tui.bridge import CallBridge, MessageView, RoomChanged, SessionChanged
from tuichat.tui.screens.help import HelpScreen
from tuichat.tui.widgets import InviteLine, MessageLog, ParticipantList, StatusLine, VideoPanel

log = logging.getLogger(__name__)

#: Message keys remembered to skip repeats after a reconnect; more than the server's history.
SHOWN_MESSAGES_KEPT = 500


class ChatApp(App[None]):
    """Keyboard first: function and Ctrl keys work while typing, letters once Esc has left the input."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "tuichat"
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f7", "copy_invite", "Copy invite"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("escape", "leave_input", "Leave input", show=False),
        Binding("question_mark", "help", "Help", show=False),
        Binding("i", "focus_input", "Type", show=False),
        Binding("y", "copy_invite", "Copy invite", show=False),
        Binding("q", "quit", "Quit", show=False),
    ]
    #: Shown in the help screen, in this order, with both forms of each key.
    KEY_HELP = [
        ("F1  ?", "this help"),
        ("Enter", "send the message (in the input line); start a private message (on a name)"),
        ("Tab  Shift+Tab", "move between the input, the people list and the messages"),
        ("Esc  i", "leave the input line / go back to it"),
        ("F7  y", "copy the invite command to the clipboard"),
        ("PgUp  PgDn", "scroll the messages (when focused)"),
        ("Ctrl+Q  q", "leave the room and quit"),
    ]

    def __init__(self, url: str, user: str, room: str, *, session_options: SessionOptions | None = None) -> None:
        super().__init__()
        self.url = url
        self.user = user
        self.room_name = room
        self.exit_message = ""
        self.bridge = CallBridge(self, url, user, room, session_options)
        self.invite_address = display_address(url)
        self._shown_messages: dict[tuple[float, int], None] = {}  # insertion-ordered, bounded below
        self._has_joined = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="stage"):
                yield VideoPanel(id="video")
                yield MessageLog(id="log")
            with Vertical(id="side"):
                yield ParticipantList(id="people")
        yield Input(placeholder=f"Message {self.room_name} as {self.user}  (F1 for help)", id="composer",
                    max_length=TEXT_MAX_LENGTH)
        yield StatusLine(id="status")
        yield InviteLine(self.invite_address, self.room_name, id="invite")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"tuichat · {self.room_name}"
        status = self.query_one(StatusLine)
        status.room = self.room_name
        self.query_one("#composer", Input).focus()
        self.query_one(MessageLog).add_notice(f"Joining {self.room_name} on {self.invite_address} as {self.user}…")
        self.bridge.start()

    async def on_unmount(self) -> None:
        await self.bridge.stop()

    # --- events from the call --------------------------------------------------------------------

    @on(SessionChanged)
    def _session_changed(self, event: SessionChanged) -> None:
        status = self.query_one(StatusLine)
        status.status = event.status
        status.reason = event.reason
        messages = self.query_one(MessageLog)
        if event.status is SessionStatus.DISCONNECTED and event.reason != "disconnected":
            messages.add_notice(f"Connection lost: {event.reason}. Reconnecting…", style="red")
            status.joined = False
        elif event.status is SessionStatus.FAILED:
            messages.add_notice(event.reason, style="bold red")
        elif event.status is SessionStatus.ESTABLISHED and event.reason == "reconnected":
            messages.add_notice("Reconnected.", style="green")

    @on(RoomChanged)
    def _room_changed(self, event: RoomChanged) -> None:
        messages = self.query_one(MessageLog)
        people = self.query_one(ParticipantList)
        status = self.query_one(StatusLine)
        if event.event is RoomEvent.FAILED:
            status.joined = False
            status.status = SessionStatus.FAILED
            status.reason = event.reason
            verb = "Dropped from" if self._has_joined else "Could not join"
            messages.add_notice(f"{verb} {self.room_name}: {event.reason}", style="bold red")
            self.exit_message = f"tuichat: {event.reason}"
            return
        people.show(event.participants)
        status.count = len(event.participants)
        if event.event is RoomEvent.STATE:
            status.joined = True
            # After a reconnect STATE comes again: show only history this log has not shown yet.
            for message in event.history:
                self._show_message(message)
            others = [p.name for p in event.participants if not p.is_self]
            here = ", ".join(others) if others else "nobody else yet"
            verb = "rejoined" if self._has_joined else "joined"
            self._has_joined = True
            messages.add_notice(f"You {verb} {self.room_name}. Here: {here}.", style="green")
        elif event.event is RoomEvent.JOINED and event.participant:
            messages.add_notice(f"{event.participant.name} joined.")
        elif event.event is RoomEvent.LEFT and event.participant:
            why = f" ({event.reason})" if event.reason and event.reason != "left" else ""
            messages.add_notice(f"{event.participant.name} left{why}.")
        elif event.event is RoomEvent.MESSAGE and event.message:
            self._show_message(event.message)

    def _show_message(self, message: MessageView) -> None:
        key = (message.timestamp, message.id)
        if key not in self._shown_messages:
            self._shown_messages[key] = None
            if len(self._shown_messages) > SHOWN_MESSAGES_KEPT:
                del self._shown_messages[next(iter(self._shown_messages))]
            self.query_one(MessageLog).add_message(message)

    # --- input -----------------------------------------------------------------------------------

    @on(Input.Submitted, "#composer")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if text.startswith("/"):
            self._run_command(text, event.input)
            return
        event.input.value = ""
        self._send(text, None)

    def _run_command(self, text: str, composer: Input) -> None:
        command, _, rest = text.partition(" ")
        messages = self.query_one(MessageLog)
        if command in ("/quit", "/exit"):
            self.run_worker(self.action_quit())
        elif command == "/help":
            composer.value = ""
            self.action_help()
        elif command == "/msg":
            name, body = _split_name(rest)
            if not name or not body:
                messages.add_notice("Usage: /msg NAME TEXT (quote a name with spaces: /msg \"Ann Lee\" hi)",
                                    style="yellow")
                return
            composer.value = ""
            self._send(body, name)
        else:
            messages.add_notice(f"Unknown command {command}; /help lists them.", style="yellow")

    @work(group="send")
    async def _send(self, text: str, to_name: str | None) -> None:
        try:
            await self.bridge.send_message(text, to_name)
        except (CommandFailed, ConnectionFailed) as exc:
            reason = exc.reason if isinstance(exc, CommandFailed) else str(exc)
            self.query_one(MessageLog).add_notice(f"Not sent: {reason}", style="bold red")
            composer = self.query_one("#composer", Input)
            if not composer.value:  # give the text back so nothing typed is lost
                composer.value = text if to_name is None else f"/msg {_quote(to_name)} {text}"

    @on(ParticipantList.PrivateMessageRequested)
    def _private_message(self, event: ParticipantList.PrivateMessageRequested) -> None:
        composer = self.query_one("#composer", Input)
        composer.value = f"/msg {_quote(event.name)} "
        composer.focus()
        composer.cursor_position = len(composer.value)

    # --- actions ---------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.KEY_HELP))

    def action_leave_input(self) -> None:
        if self.focused is self.query_one("#composer"):
            self.query_one(ParticipantList).focus()

    def action_focus_input(self) -> None:
        self.query_one("#composer", Input).focus()

    def action_copy_invite(self) -> None:
        command = self.query_one(InviteLine).command
        self.copy_to_clipboard(command)
        self.notify(command, title="Invite copied", timeout=4)

    async def action_quit(self) -> None:
        self.query_one(MessageLog).add_notice("Leaving…")
        await self.bridge.stop()
        self.exit()


def _quote(name: str) -> str:
    return f'"{name}"' if " " in name else name


def _split_name(rest: str) -> tuple[str, str]:
    """``"Ann Lee" hi there`` → (Ann Lee, hi there); ``bob hi`` → (bob, hi)."""
    rest = rest.strip()
    if rest.startswith('"'):
        name, _, body = rest[1:].partition('"')
        return name, body.strip()
    name, _, body = rest.partition(" ")
    return name, body.strip()
