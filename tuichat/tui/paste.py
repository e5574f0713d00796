"""Bracketed paste that keeps an ESC byte as text: everything between ESC[200~ and ESC[201~ is one Paste.

Textual's ``XTermParser`` (written against Textual 8.2.8; pyproject pins textual>=8.2,<9) runs an
ESC inside a bracketed paste through its escape-sequence loop: what it reads there is left out of
the paste and reissued as key events before the ``Paste`` arrives. Pasting ``ls`` output with colour
codes came out scrambled, and two ESCs in a row made a real Esc key, so the rest of the paste ran
app bindings (``m`` muted, ``t`` hid the panels). ``PasteSafeXTermParser`` sits in front of Textual's
parse generator: it collects a paste's text itself, hands Textual only the two markers (so Textual's
own paste state stays in step) and everything outside a paste unchanged, with Textual's timing for
a lone Esc. The driver reads input with it through ``paste_safe_driver``.

Textual internals this relies on (private, so ``paste_safe_driver`` checks them, and runs a paste
through the parser, before using it; otherwise Textual's parser stays and the log says why):
``XTermParser.parse(token_callback)`` is a generator that reads one character at a time with
``Read1`` (never ``Peek1``) and takes ``ParseTimeout``/``ParseEOF`` thrown in (``textual._parser``);
an ESC waits ``constants.ESCAPE_DELAY`` for the rest of its sequence; and
``LinuxDriver.run_input_thread`` creates its parser through its module's name ``XTermParser``.
No Textual issue about this was found (#1661 is the NUL-in-paste fix this keeps).
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable, Generator
from typing import Any

from textual import constants, events
from textual.driver import Driver
from textual.message import Message

try:  # Textual's private parser modules: without them, paste_safe_driver leaves Textual's driver alone.
    from textual._parser import ParseEOF, ParseTimeout, Peek1, Read1
    from textual._xterm_parser import XTermParser
except ImportError as error:  # pragma: no cover - Textual reorganised its parser
    _IMPORT_ERROR: str | None = str(error)
    XTermParser = object  # type: ignore[assignment, misc]
else:
    _IMPORT_ERROR = None

__all__ = ["PASTE_END", "PASTE_START", "PasteSafeXTermParser", "paste_safe_driver"]

log = logging.getLogger(__name__)

#: What a terminal in bracketed-paste mode (DECSET 2004) sends before and after pasted text.
PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"
_ESC = "\x1b"


class PasteSafeXTermParser(XTermParser):
    """Textual's xterm input parser, with the text of a bracketed paste kept out of its reach."""

    def parse(self, token_callback: Callable[[Message], None]) -> Generator[Read1, str, None]:
        def from_textual(token: Message) -> None:
            # Textual only ever sees the markers of a paste: its Paste is empty, ours replaces it.
            if not isinstance(token, events.Paste):
                token_callback(token)

        textual = super().parse(from_textual)
        awaiting: Read1 | Peek1 = next(textual)
        held = ""  # the start of a marker, read but not passed on yet
        pasting = False
        pasted: list[str] = []

        def to_textual(text: str) -> None:
            nonlocal awaiting
            for character in text:
                awaiting = textual.send(character)

        try:
            while True:
                if pasting:
                    want = self.read1()  # pasted text waits for its end marker, as in Textual
                elif held:
                    want = self.read1(constants.ESCAPE_DELAY)  # an ESC: Textual's wait for the rest
                else:
                    want = self.read1(awaiting.timeout)
                try:
                    character = yield want
                except ParseTimeout:  # only while not pasting: nothing more came after an ESC
                    if held:
                        to_textual(held)
                        held = ""
                    if awaiting.timeout is not None:
                        awaiting = textual.throw(ParseTimeout())
                    continue
                except ParseEOF:
                    if held and not pasting:
                        to_textual(held)
                    textual.throw(ParseEOF())
                    return

                marker = PASTE_END if pasting else PASTE_START
                if held:
                    if marker.startswith(held + character):
                        held += character
                        if held != marker:
                            continue
                        held = ""
                        to_textual(marker)
                        if pasting:
                            token_callback(events.Paste("".join(pasted).replace("\x00", "")))
                            pasted.clear()
                        pasting = not pasting
                        continue
                    # Not a marker after all: what was held is text (in a paste) or keys (outside).
                    if pasting:
                        pasted.append(held)
                    else:
                        to_textual(held)
                    held = ""
                if character == _ESC:
                    held = character
                elif pasting:
                    pasted.append(character)
                else:
                    to_textual(character)
        except StopIteration:  # Textual's parser finished (end of input)
            return


def _paste_safe_parser_works() -> str | None:
    """Why PasteSafeXTermParser can't be trusted with this Textual, or None when it can.

    A paste holding escape sequences, between keys, must come out as those keys around one Paste.
    """
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    try:
        if list(inspect.signature(XTermParser.parse).parameters) != ["self", "token_callback"]:
            return "XTermParser.parse takes other arguments"
        pasted = "b\x1b[1mc\x1b\x1bq\tm\r"
        parser = PasteSafeXTermParser()
        tokens = [*parser.feed(f"a{PASTE_START}{pasted}{PASTE_END}\x1b[A"), *parser.feed("")]
    except Exception as error:  # whatever went wrong: keep Textual's parser
        return f"the paste check failed ({error!r})"
    seen = [(type(t).__name__, getattr(t, "key", None) or getattr(t, "text", None)) for t in tokens]
    expected = [("Key", "a"), ("Paste", pasted), ("Key", "up")]
    return None if seen == expected else f"the paste check read {seen}, not {expected}"


def _input_thread(driver_class: type[Driver]) -> types.FunctionType | None:
    """The driver's ``run_input_thread`` if it creates its parser as ``XTermParser`` (so can be given ours)."""
    method = getattr(driver_class, "run_input_thread", None)
    if isinstance(method, types.FunctionType) and "XTermParser" in method.__code__.co_names \
            and method.__globals__.get("XTermParser") is XTermParser:
        return method
    return None


def _reading_with(parser_class: type[Any], run_input_thread: Callable[..., None]) -> Callable[..., None]:
    """``run_input_thread`` as it is, except that the ``XTermParser`` it creates is ``parser_class``.

    Textual's own code, not a copy: only the name it looks the parser up by is bound differently,
    for this one function (the module, and any other driver, keep Textual's parser).
    """
    namespace = dict(run_input_thread.__globals__, XTermParser=parser_class)
    function = types.FunctionType(run_input_thread.__code__, namespace, run_input_thread.__name__,
                                  run_input_thread.__defaults__, run_input_thread.__closure__)
    function.__kwdefaults__ = run_input_thread.__kwdefaults__
    function.__qualname__ = run_input_thread.__qualname__
    function.__doc__ = run_input_thread.__doc__
    return function


def paste_safe_driver(driver_class: type[Driver]) -> type[Driver]:
    """``driver_class`` reading input with ``PasteSafeXTermParser`` when it is Textual's ``LinuxDriver``
    (Linux and macOS); any other driver (headless, web, Windows, ``TEXTUAL_DRIVER``) as it is.

    If Textual's parser or driver are not as this module expects, ``driver_class`` as it is, with a
    warning in the log: a paste holding ESC is then read as Textual reads it.
    """
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except ImportError:  # pragma: no cover - no termios (Windows)
        return driver_class
    if driver_class is not LinuxDriver:
        return driver_class
    run_input_thread = _input_thread(LinuxDriver)
    if run_input_thread is None:
        problem: str | None = "LinuxDriver.run_input_thread no longer creates its parser as XTermParser"
    else:
        problem = _paste_safe_parser_works()
    if run_input_thread is None or problem is not None:
        log.warning("Textual's input parser kept (a paste holding ESC may turn into keys): %s", problem)
        return driver_class
    return type("PasteSafeLinuxDriver", (LinuxDriver,), {
        "__module__": __name__,
        "__doc__": "Textual's LinuxDriver, reading input with PasteSafeXTermParser.",
        "run_input_thread": _reading_with(PasteSafeXTermParser, run_input_thread),
    })
