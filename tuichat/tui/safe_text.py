"""Make other people's text safe to draw: nothing they send may act on the terminal.

Rich leaves ESC and C1 codes in ``Text`` objects, so escape sequences in a name or message would
reach the terminal. Here every control character becomes a visible symbol (ESC shows as '␛'), and
invisible format characters (bidi overrides, zero-width spaces) become '�' (zero-width joiners are
left out). Unicode's other line breaks (U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR and U+0085
NEXT LINE) are line breaks, as '\n' is: where lines are kept (a message, a notice, a toast) a new line,
elsewhere (a name, the status line) '␊'. U+2028 and U+2029 are not control characters, so the server
lets them through in messages, and they came out as '�' in the middle of what was written as two lines.
Markup is never parsed: callers build ``rich.text.Text`` from the result, so ``[bold]x[/]`` shows as
typed.

Layout counts cells with Rich, the terminal draws with its own rule, and where they differ a row runs
past its box or short of it (a border out of line). They differ on emoji presentation, so what sets
it is left out: U+FE0F (Rich counts '❤️' as 2 cells, tmux 3.3 and other wcwidth terminals draw 1,
emoji terminals 2), U+FE0E (the wide emoji it follows may be drawn narrow), and the skin tones
U+1F3FB-U+1F3FF (Rich counts 0, wcwidth terminals draw a 2-cell swatch, so '👍🏽' took 4 cells for 2).
'❤', '👍', a keycap '1⃣' are then one width in Rich and in every terminal that follows wcwidth.
Flags (regional indicator pairs), wide and ambiguous (narrow) characters are kept: those agree.
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len, set_cell_size

_CONTROL_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)} | {0x7F: "\u2421"}
#: Zero-width (non-)joiners are left out rather than shown as '�': 👩‍💻 shows as 👩💻, not 👩�💻, and
#: every terminal agrees on the width of what remains, so borders stay straight.
_JOINERS = frozenset("\u200c\u200d")
#: Line breaks: '\n' and the three Unicode adds to it (the bot escapes the same three in its JSON
#: lines, and Python's ``str.splitlines`` splits at them). CR stays '␍': the server refuses it, and a
#: bare CR moves the cursor rather than starting a line.
LINE_BREAKS = frozenset("\n\x85\u2028\u2029")
#: Emoji presentation selectors (VS15 text, VS16 emoji) and skin-tone modifiers: left out, as above.
_EMOJI_STYLE = frozenset("\ufe0e\ufe0f") | frozenset(map(chr, range(0x1F3FB, 0x1F400)))


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with control and format characters replaced by visible stand-ins, and what changes an
    emoji's width (joiners, presentation selectors, skin tones) left out."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in LINE_BREAKS:
            out.append("\n" if keep_newlines else _CONTROL_PICTURES[0x0A])
        elif char == "\t":
            out.append("    " if keep_newlines else " ")
        elif code in _CONTROL_PICTURES:
            out.append(_CONTROL_PICTURES[code])
        elif char in _JOINERS:
            continue  # emoji and script joiners: harmless, but a joined emoji's width is the terminal's guess
        elif char in _EMOJI_STYLE:
            continue  # the emoji (or symbol) stays, in its default presentation and width
        elif 0x80 <= code <= 0x9F or unicodedata.category(char) in ("Cf", "Cs", "Zl", "Zp"):
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


def cut_to_cells(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` terminal cells, ending in '…' when cut ("connection…", not
    "connection …"); wide characters count as two."""
    if cell_len(text) <= cells:
        return text
    return set_cell_size(text, max(0, cells - 1)).rstrip() + "…"
