"""The invite line: the exact command a second person types to join this room, and the browser link."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tuichat.protocol.invites import invite_command, is_loopback_host, terminal_address
from tuichat.tui.safe_text import printable

__all__ = ["InviteLine", "invite_command", "invite_link", "terminal_address"]


def invite_link(address: str, room: str) -> str:
    """The web page of ``room`` from the address people type (``host:port`` or ``wss://host[:port]``)
    or from the server's public URL (``http(s)://host[:port][/prefix]``, from STATE)."""
    if address.startswith(("http://", "https://")):
        base = address.rstrip("/")
    elif address.startswith("wss://"):
        base = "https://" + address.removeprefix("wss://").split("/", 1)[0]
    else:
        base = "http://" + address.removeprefix("ws://").split("/", 1)[0]
    return f"{base}/r/{quote(room, safe='')}"


class InviteLine(Widget):
    DEFAULT_CSS = """
    InviteLine {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """

    #: The browser link; set ``public_url`` (the server's, from STATE) to rebuild it.
    link: reactive[str] = reactive("")

    def __init__(self, address: str, room: str, options: Sequence[str] = (), **kwargs: object) -> None:
        """``options``: what the invitee needs as well as we did (``--ca-file tuichat.pem``)."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.room = room
        self.options = tuple(options)
        self.command = invite_command(address, room, self.options)
        self.set_reactive(InviteLine.link, invite_link(address, room))

    @property
    def this_computer_only(self) -> bool:
        """The address is a loopback one: an invitee elsewhere cannot use it (``serve`` prints one they can)."""
        return is_loopback_host(urlsplit(self.link).hostname or "")

    def set_public_url(self, public_url: str) -> None:
        """Use the address the server says it is reached at (``serve --public-url``), in the command
        too: behind a reverse proxy the address we used is not one the invitee can reach."""
        self.command = invite_command(terminal_address(public_url), self.room, self.options)
        self.link = invite_link(public_url, self.room)
        self.refresh()

    def render(self) -> Text:
        # The full line where it fits; else without the hint, or the link (one F7 away), whichever
        # matters less ("this computer only" matters more than the link); a command cut short ends in '…'.
        width = self.content_size.width
        shapes = ((True, True), (False, True), (True, False)) if self.this_computer_only else \
            ((True, True), (True, False), (False, True))
        for link, hint in shapes:
            line = self._line(link=link, hint=hint)
            if not width or line.cell_len <= width:
                return line
        line = self._line(link=False, hint=False)
        line.truncate(width, overflow="ellipsis")
        return line

    def _line(self, *, link: bool, hint: bool) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("invite: ", style="dim")
        line.append(printable(self.command), style="bold")
        if link:
            line.append("  or  ", style="dim")
            line.append(printable(self.link), style="bold underline")
        if hint:
            if self.this_computer_only:
                text = "this computer only; " + ("F7 copies both" if link else "F7 copies it and the link")
            else:
                text = "F7 copies both" if link else "F7 copies it and the browser link"
            line.append(f"   ({text})", style="dim")
        return line
