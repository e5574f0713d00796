"""The key bar: Textual's footer, fitted to the terminal so that every key stays in view.

Textual's ``Footer`` cuts off whatever does not fit, and at 80 columns that was F7 and F8. This
one picks, per width, the roomiest of a few forms that fits: the normal footer; compact (less
space between keys); compact with short labels; and, last, without the command palette's key
(F1's help lists Ctrl+P). Widths come from the labels and Textual's footer CSS (8.x).
"""

from __future__ import annotations

from typing import NamedTuple

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

__all__ = ["KeyBar"]


class _Form(NamedTuple):
    compact: bool
    short: bool
    palette: bool


#: Roomiest first.
_FORMS = (
    _Form(compact=False, short=False, palette=True),
    _Form(compact=True, short=False, palette=True),
    _Form(compact=True, short=True, palette=True),
    _Form(compact=True, short=True, palette=False),
)


class KeyBar(Footer):
    """A footer that keeps every key in view: ``short_labels`` maps actions to labels for narrow
    terminals."""

    def __init__(self, short_labels: dict[str, str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.short_labels = short_labels
        self.form = _FORMS[0]

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            action = getattr(widget, "action", None)
            if self.form.short and action in self.short_labels:
                widget.description = self.short_labels[action]  # type: ignore[attr-defined]
            yield widget

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width)

    def bindings_changed(self, screen: Screen[object]) -> None:
        super().bindings_changed(screen)
        self.fit(self.size.width)

    def fit(self, width: int) -> None:
        """Switch to the roomiest form whose keys fit in ``width`` columns."""
        if width <= 0:
            return
        form = next((f for f in _FORMS if self._width(f) <= width), _FORMS[-1])
        if form != self.form:
            self.form = form
            self.compact = form.compact
            self.show_command_palette = form.palette
            self.refresh(recompose=True)

    def _labels(self) -> tuple[list[tuple[str, str, str]], tuple[str, str] | None]:
        """(key shown, label, action) of each key the footer shows, and the palette's (key, label)."""
        try:
            active = self.screen.active_bindings
        except Exception:  # not on a screen yet
            return [], None
        keys: dict[str, tuple[str, str, str]] = {}
        for _node, binding, _enabled, _tooltip in active.values():
            if binding.show and binding.action not in keys:
                keys[binding.action] = (self.app.get_key_display(binding), binding.description, binding.action)
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        shown_palette = None
        if palette is not None and self.app.ENABLE_COMMAND_PALETTE:
            shown_palette = (self.app.get_key_display(palette[1]), palette[1].description)
        return list(keys.values()), shown_palette

    def _width(self, form: _Form) -> int:
        keys, palette = self._labels()
        total = 0
        for key, label, action in keys:
            if form.short:
                label = self.short_labels.get(action, label)
            # " key label " normally; "key label" and a margin of 1 when compact.
            total += len(key) + len(label) + (2 if form.compact else 3)
        if form.palette and palette is not None:
            # A border on its left; "key label" plus padding.
            total += len(palette[0]) + len(palette[1]) + (2 if form.compact else 4)
        return total
