"""What a participant or room name may contain.

Names are shown in other people's terminals and browsers, so the set is strict: 1 to 32 characters
from Unicode letters, marks, numbers, punctuation and symbols, plus the ASCII space inside the name.
No control characters (C0, C1, DEL), no other whitespace, no format characters (bidi overrides,
zero-width joiners), no leading or trailing space. Room names are the same set without spaces or
'/', and not '.' or '..', because they appear in URLs and command lines.
"""

from __future__ import annotations

import unicodedata

from tuichat.protocol.limits import NAME_MAX_LENGTH, ROOM_MAX_LENGTH

_ALLOWED_CATEGORIES = frozenset(
    {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
     "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
)


def _check(value: str, what: str, max_length: int, *, allow_space: bool) -> str | None:
    if not value:
        return f"{what} must not be empty"
    if len(value) > max_length:
        return f"{what} is {len(value)} characters long; the limit is {max_length}"
    if value != value.strip():
        return f"{what} must not start or end with a space"
    for char in value:
        if char == " " and allow_space:
            continue
        if char == "/" and not allow_space:
            return f"{what} must not contain '/'"
        if unicodedata.category(char) not in _ALLOWED_CATEGORIES:
            return f"{what} must not contain {_describe(char)}"
    return None


def _describe(char: str) -> str:
    if char.isspace():
        return "spaces" if char == " " else f"whitespace U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    return f"the character U+{ord(char):04X}" + (f" ({name})" if name else " (a control character)")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid participant name, or None when it is."""
    return _check(name, "a name", NAME_MAX_LENGTH, allow_space=True)


def room_problem(room: str) -> str | None:
    """Why ``room`` is not a valid room name, or None when it is."""
    if room in (".", ".."):  # a link's path resolves them away, even percent-encoded
        return f"a room name must not be {room!r}: the invite link could not name it"
    return _check(room, "a room name", ROOM_MAX_LENGTH, allow_space=False)


def text_problem(text: str, max_length: int) -> str | None:
    """Why chat ``text`` is refused: empty, too long, or holding control characters.

    Newlines and tabs are allowed; escape sequences are not, so nothing that reaches another
    terminal can be a control code even if a client forgets to sanitise.
    """
    if not text.strip():
        return "a message must not be empty"
    if len(text) > max_length:
        return f"a message is {len(text)} characters long; the limit is {max_length}"
    for char in text:
        if char in "\n\t":
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or (category == "Cf" and char not in "\u200d"):
            return f"a message must not contain {_describe(char)}"
    return None
