"""The key bar: Textual's footer, fitted to the terminal so that every key stays in view.

Textual's ``Footer`` cuts off whatever does not fit, and at 80 columns that was F7 and F8. This
one picks, per width, the roomiest of a few forms that fits: the normal footer; compact (less
space between keys); compact with short labels; without the command palette's key (F1's help
lists Ctrl+P); and, below about 64 columns, without the keys of ``drop_order`` one by one, so
that what is shown is whole (it was cut mid-word) and Help stays to list the rest. Widths come
from the labels and Textual's footer CSS (8.x).
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
    #: How many keys of ``KeyBar.drop_order`` are left out.
    dropped: int = 0


#: Roomiest first; then the last of these less the keys of ``drop_order``, one more at a time.
_FORMS = (
    _Form(compact=False, short=False, palette=True),
    _Form(compact=True, short=False, palette=True),
    _Form(compact=True, short=True, palette=True),
    _Form(compact=True, short=True, palette=False),
)


class KeyBar(Footer):
    """A footer that keeps its keys whole: ``short_labels`` maps actions to labels for narrow
    terminals; ``drop_order`` lists the actions left out, first ones first, when even those do not
    fit (the help screen lists every key, so its key should not be among them)."""

    def __init__(self, short_labels: dict[str, str], drop_order: tuple[str, ...] = (), *,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.short_labels = short_labels
        self.drop_order = drop_order
        self.form = _FORMS[0]
        #: Actions left out whatever the width (their key still works): see ``hide``.
        self.hidden: set[str] = set()

    @property
    def forms(self) -> tuple[_Form, ...]:
        """Every form, roomiest first."""
        last = _FORMS[-1]
        return _FORMS + tuple(last._replace(dropped=n) for n in range(1, len(self.drop_order) + 1))

    def compose(self) -> ComposeResult:
        dropped = self._dropped(self.form)
        shown = 0
        for widget in super().compose():
            action = getattr(widget, "action", None)
            if action in dropped:
                continue
            if self.form.short and action in self.short_labels:
                widget.description = self.short_labels[action]  # type: ignore[attr-defined]
            shown += 1
            yield widget
        if dropped:
            self.styles.grid_size_columns = shown

    def hide(self, action: str, hidden: bool = True) -> None:
        """Leave ``action``'s key out of the bar (``hidden=False``: show it again). For a key with
        nothing to act on for now, such as F7 with no invite: its binding stays, and says so."""
        if hidden == (action in self.hidden):
            return
        if hidden:
            self.hidden.add(action)
        else:
            self.hidden.discard(action)
        self.fit(self.size.width, recompose=True)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width)

    def bindings_changed(self, screen: Screen[object]) -> None:
        super().bindings_changed(screen)
        self.fit(self.size.width)

    def fit(self, width: int, *, recompose: bool = False) -> None:
        """Switch to the roomiest form whose keys fit in ``width`` columns (``recompose``: draw the
        keys again even if the form stays, as when one is hidden)."""
        if width <= 0:
            if recompose:
                self.refresh(recompose=True)
            return
        forms = self.forms
        form = next((f for f in forms if self._width(f) <= width), forms[-1])
        if form != self.form or recompose:
            self.form = form
            self.compact = form.compact
            self.show_command_palette = form.palette
            self.refresh(recompose=True)

    def _dropped(self, form: _Form) -> set[str]:
        """The actions ``form`` leaves out, hidden ones included."""
        return set(self.drop_order[:form.dropped]) | self.hidden

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
        dropped = self._dropped(form)
        total = 0
        for key, label, action in keys:
            if action in dropped:
                continue
            if form.short:
                label = self.short_labels.get(action, label)
            # " key label " normally; "key label" and a margin of 1 when compact.
            total += len(key) + len(label) + (2 if form.compact else 3)
        if form.palette and palette is not None:
            # A border on its left; "key label" plus padding.
            total += len(palette[0]) + len(palette[1]) + (2 if form.compact else 4)
        return total
