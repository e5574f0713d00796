"""What a typed chat line means: ``/msg NAME TEXT`` is a private message, anything else goes to all.

Shared by the terminal client and the bot, so a line means the same to both. Names with spaces
are quoted: ``/msg "Ann Lee" hi``.
"""

from __future__ import annotations

__all__ = ["PRIVATE_PREFIX", "private_line", "quote_name", "split_name"]

PRIVATE_PREFIX = "/msg"


def quote_name(name: str) -> str:
    """``Ann Lee`` → ``"Ann Lee"``; names without spaces stay as they are."""
    return f'"{name}"' if " " in name else name


def split_name(rest: str) -> tuple[str, str]:
    """``"Ann Lee" hi there`` → (Ann Lee, hi there); ``bob hi`` → (bob, hi)."""
    rest = rest.strip()
    if rest.startswith('"'):
        name, _, body = rest[1:].partition('"')
        return name, body.strip()
    name, _, body = rest.partition(" ")
    return name, body.strip()


def private_line(name: str, text: str) -> str:
    """The line that sends ``text`` to ``name`` alone (the inverse of `split_name` after the prefix)."""
    return f"{PRIVATE_PREFIX} {quote_name(name)} {text}"
