"""What a participant or room name may contain.

Names are shown in other people's terminals and browsers, so the set is strict: 1 to 32 characters
from Unicode letters, marks, numbers, punctuation and symbols, plus the ASCII space inside the name.
No control characters (C0, C1, DEL), no other whitespace, no format characters (bidi overrides,
zero-width joiners), no leading or trailing space. Room names are the same set without spaces or
'/', and not '.' or '..', because they appear in URLs and command lines.

Someone must not pass for someone else: characters that draw as nothing (a Hangul filler, a blank
braille cell, U+034F) are refused, a name starts with a base character and stacks at most
`MAX_MARKS_IN_A_ROW` marks on it, Latin letters do not mix with Cyrillic or Greek ones (`wаtcher`
with a Cyrillic а), and two names are the same when `name_key` says so (``ｗａｔｃｈｅｒ`` and
``watcher``, or ``watcher`` with a variation selector).
"""

from __future__ import annotations

import unicodedata

from tuichat.protocol.limits import NAME_MAX_LENGTH, ROOM_MAX_LENGTH

_ALLOWED_CATEGORIES = frozenset(
    {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
     "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
)


#: Letters and symbols that draw as nothing at all.
_INVISIBLE = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180E, 0x180F,
                        0x2800, 0x3164, 0xFFA0})
#: Variation selectors choose how the character before them is drawn (text or emoji): allowed
#: (emoji keyboards add them), but not part of what makes a name different.
_VARIATION_SELECTORS = frozenset(range(0xFE00, 0xFE10)) | frozenset(range(0xE0100, 0xE01F0))
#: Emoji skin tones: allowed, but not what makes a name different either (the terminal client leaves
#: them out, as terminals disagree on their width: 'Sam👍🏽' and 'Sam👍🏿' would show alike).
_EMOJI_MODIFIERS = frozenset(range(0x1F3FB, 0x1F400))
_NOT_IN_KEYS = _VARIATION_SELECTORS | _EMOJI_MODIFIERS
#: Vietnamese stacks two marks on a letter, Thai and others up to three.
MAX_MARKS_IN_A_ROW = 3
_LOOKALIKE_SCRIPTS = ("CYRILLIC", "GREEK")


def _check(value: str, what: str, max_length: int, *, allow_space: bool) -> str | None:
    if not value:
        return f"{what} must not be empty"
    if len(value) > max_length:
        return f"{what} is {len(value)} characters long; the limit is {max_length}"
    if value != value.strip():
        return f"{what} must not start or end with a space"
    marks = 0
    for index, char in enumerate(value):
        if char == " " and allow_space:
            marks = 0
            continue
        if char == "/" and not allow_space:
            return f"{what} must not contain '/'"
        category = unicodedata.category(char)
        if category not in _ALLOWED_CATEGORIES:
            return f"{what} must not contain {_describe(char)}"
        if ord(char) in _INVISIBLE:
            return f"{what} must not contain {_describe(char)}: it cannot be seen"
        if category.startswith("M") and ord(char) not in _VARIATION_SELECTORS:
            marks += 1
            if index == 0 or value[index - 1] == " ":
                return f"{what} must not start with an accent or other mark: {_describe(char)}"
            if marks > MAX_MARKS_IN_A_ROW:
                return f"{what} must not stack more than {MAX_MARKS_IN_A_ROW} marks on one character"
        else:
            marks = 0
    return None


def _describe(char: str) -> str:
    if char.isspace():
        return "spaces" if char == " " else f"whitespace U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    if name:
        return f"the character U+{ord(char):04X} ({name})"
    kind = {"Co": "a private-use character", "Cn": "an unassigned code point", "Cs": "a surrogate"}
    return f"the character U+{ord(char):04X} ({kind.get(unicodedata.category(char), 'a control character')})"


def _scripts(value: str) -> set[str]:
    return {unicodedata.name(char, "").split(" ", 1)[0] for char in value if char.isalpha()}


def name_key(name: str) -> str:
    """What two names must not share in one room: compatibility forms folded (fullwidth and
    mathematical letters are the plain ones), case folded, variation selectors and skin tones dropped."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(char for char in unicodedata.normalize("NFKC", folded) if ord(char) not in _NOT_IN_KEYS)


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid participant name, or None when it is."""
    problem = _check(name, "a name", NAME_MAX_LENGTH, allow_space=True)
    for word in name.split(" ") if problem is None else ():  # "Ivan Иван" is two words, each in one script
        if "LATIN" in (scripts := _scripts(word)):
            mixed = [script.title() for script in _LOOKALIKE_SCRIPTS if script in scripts]
            if mixed:
                return (f"a word of a name must not mix Latin letters with {' or '.join(mixed)} ones: "
                        "they can look like someone else's name")
    return problem


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
