"""What a typed chat line means: ``/msg NAME TEXT`` is a private message, anything else goes to all.

Shared by the terminal client and the bot, so a line means the same to both. Names with spaces
are quoted: ``/msg "Ann Lee" hi``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["PRIVATE_PREFIX", "PRIVATE_USAGE", "ChatLine", "LineKind", "parse_line", "private_line", "quote_name",
           "split_name"]

PRIVATE_PREFIX = "/msg"
PRIVATE_USAGE = 'usage: /msg NAME TEXT (quote a name with spaces: /msg "Ann Lee" hi)'
QUIT_COMMANDS = ("/quit", "/exit")
HELP_COMMAND = "/help"


def quote_name(name: str) -> str:
    """``Ann Lee`` → ``"Ann Lee"``; names without spaces stay as they are."""
    return f'"{name}"' if " " in name else name


def split_name(rest: str) -> tuple[str, str]:
    """``"Ann Lee" hi there`` → (Ann Lee, hi there); ``bob hi`` → (bob, hi); any whitespace after
    the name ends it (a tab, a pasted line break)."""
    rest = rest.strip()
    if rest.startswith('"'):
        name, _, body = rest[1:].partition('"')
        return name, body.strip()
    name, *after = rest.split(None, 1) or [""]
    return name, after[0].strip() if after else ""


def private_line(name: str, text: str) -> str:
    """The line that sends ``text`` to ``name`` alone (the inverse of `split_name` after the prefix)."""
    return f"{PRIVATE_PREFIX} {quote_name(name)} {text}"


class LineKind(Enum):
    TEXT = "text"  # to everyone
    PRIVATE = "private"  # /msg NAME TEXT
    QUIT = "quit"  # /quit or /exit
    HELP = "help"  # /help
    INVALID = "invalid"  # a /msg without NAME and TEXT, or an unknown /command: not to be sent


@dataclass(frozen=True)
class ChatLine:
    kind: LineKind
    #: What to send (TEXT: the line as it was typed; PRIVATE: the message without the command and name).
    text: str = ""
    #: PRIVATE: whom to send it to.
    name: str = ""
    #: INVALID: why the line is not sent.
    problem: str = ""


def parse_line(line: str) -> ChatLine:
    """A line as the terminal client and the bot read it: a line starting with '/' (after spaces) is
    a command, but '//' sends the rest as text (``//shrug`` says "/shrug", as in IRC clients)."""
    stripped = line.strip()
    if stripped.startswith("//"):
        return ChatLine(LineKind.TEXT, stripped[1:])
    if not stripped.startswith("/"):
        return ChatLine(LineKind.TEXT, line)
    typed, *more = stripped.split(None, 1)  # any whitespace ends the command: "/quit⏎bye", "/msg\tbob hi"
    rest = more[0] if more else ""
    command = typed.lower()  # /MSG as /msg (caps lock, or a phone's capitalised first word)
    if command in QUIT_COMMANDS:
        return ChatLine(LineKind.QUIT)
    if command == HELP_COMMAND:
        return ChatLine(LineKind.HELP)
    if command == PRIVATE_PREFIX:
        name, body = split_name(rest)
        if not name or not body:
            return ChatLine(LineKind.INVALID, problem=PRIVATE_USAGE)
        return ChatLine(LineKind.PRIVATE, body, name=name)
    return ChatLine(LineKind.INVALID, problem=f"unknown command {typed}")
