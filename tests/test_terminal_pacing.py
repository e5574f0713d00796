"""Video paced by the terminal's own replies, so a slow link drops frames instead of falling behind.

The logic with a headless app and a fake clock; then the real client behind an emulated thin SSH
link (`tests.thin_terminal`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.app import App

from tests.conftest import FakeClock
from tests.thin_terminal import compare_over_thin_link
from tuichat.tui.direct import (
    ANSWER_WAIT_S,
    LOST_REPLY_S,
    MAX_FRAMES_IN_FLIGHT,
    QUEUE_BUDGET_S,
    TerminalWriter,
)

QUERY = re.compile(r"\x1b\[1;(\d+)H\x1b\[6n")


class Recorded(App[None]):
    """A headless app whose driver's writes are kept, so the queries can be read back."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def writer(self) -> tuple[TerminalWriter, FakeClock]:
        """A writer on a fake clock whose probe has gone out (call inside ``run_test``)."""
        assert self._driver is not None
        self._driver.write = self.written.append  # type: ignore[method-assign,assignment]
        clock = FakeClock()
        writer = TerminalWriter(self, clock=clock)
        writer.probe()
        return writer, clock


async def test_frames_wait_for_the_terminal_and_go_on_when_it_answers() -> None:
    app = Recorded()
    async with app.run_test(size=(80, 24)):
        writer, clock = app.writer()
        probe = int(QUERY.findall("".join(app.written))[-1]) - 1
        # Nothing answered yet: the first frames wait for the probe (the screen's first paint).
        assert not writer.busy()
        clock.now = QUEUE_BUDGET_S + 0.01
        assert writer.busy()
        writer.acknowledge(probe, 0)
        assert writer.answers and writer.base_round_trip == pytest.approx(QUEUE_BUDGET_S + 0.01)
        assert not writer.busy()

        # Two frames go out; the terminal is slow to read them.
        writer.write("frame one", frame=True)
        clock.now += 0.05
        writer.write("frame two", frame=True)
        first, second = (int(tag) - 1 for tag in QUERY.findall("".join(app.written))[-2:])
        assert first != second and writer.in_flight == 2
        clock.now += writer.base_round_trip + QUEUE_BUDGET_S  # type: ignore[operator]
        assert writer.busy() and writer.holding()
        # A key some terminals encode like a position report (Ctrl+F3 is CSI 1;5R) is not an answer.
        writer.acknowledge(60, 0)
        writer.acknowledge(first, 5)
        assert writer.in_flight == 2
        # The reply to the second frame says the first was read too.
        writer.acknowledge(second, 0)
        assert writer.in_flight == 0 and not writer.busy()

        # However quick the replies have been, no more than a few frames go unanswered (a round trip
        # learnt while the buffers were full would otherwise let them stay full).
        for _ in range(MAX_FRAMES_IN_FLIGHT):
            assert not writer.busy()
            writer.write("frame", frame=True)
        assert writer.busy()
        last = int(QUERY.findall("".join(app.written))[-1]) - 1
        writer.acknowledge(last, 0)
        assert not writer.busy()

        # A reply that never comes (swallowed by a paste) holds the video back for LOST_REPLY_S only.
        writer.write("frame three", frame=True)
        clock.now += 1.0
        assert writer.busy()
        clock.now += LOST_REPLY_S
        assert not writer.busy()
        clock.now += 10.0
        assert not writer.holding()


async def test_frames_held_behind_our_own_work_are_not_called_a_slow_link() -> None:
    """On a busy machine the reply is in, but waits behind the app's own work: frames are held all
    the same (the app is behind), yet the status line must not blame the link (it did, on loopback)."""
    app = Recorded()
    async with app.run_test(size=(80, 24)):
        writer, clock = app.writer()
        probe = int(QUERY.findall("".join(app.written))[-1]) - 1
        clock.now = 0.02
        writer.acknowledge(probe, 0)
        writer.write("frame", frame=True)
        sent = clock.now
        tag = int(QUERY.findall("".join(app.written))[-1]) - 1
        clock.now += 0.5
        assert writer.busy() and writer.holding()  # the reply has not been handled yet
        writer.acknowledge(tag, 0, arrived=sent + 0.03)  # ... but it came back at once
        assert writer.holding() and not writer.link_slow()
        assert writer.base_round_trip == pytest.approx(0.02)  # to the reply's arrival, not its handling

        writer.write("frame", frame=True)
        sent = clock.now
        tag = int(QUERY.findall("".join(app.written))[-1]) - 1
        clock.now += 0.5
        assert writer.busy()
        writer.acknowledge(tag, 0, arrived=clock.now)  # the terminal answered only now: the link
        assert writer.link_slow()
        clock.now += 3.0
        assert not writer.link_slow(within=2.0) and not writer.holding(within=2.0)


async def test_a_terminal_that_never_answers_is_not_paced_and_is_asked_less() -> None:
    app = Recorded()
    async with app.run_test(size=(80, 24)):
        writer, clock = app.writer()
        clock.now = ANSWER_WAIT_S + 0.1
        assert not writer.busy() and not writer.answers
        app.written.clear()
        for _ in range(15):  # a second of frames
            writer.write("frame", frame=True)
            clock.now += 1 / 15
        assert len(QUERY.findall("".join(app.written))) == 1
        assert not writer.busy()


# --- a real terminal behind a thin link (tests/thin_terminal.py) ------------------------------------------


@pytest.mark.timeout(120)
def test_over_a_thin_ssh_link_the_picture_stays_current(tmp_path: Path) -> None:
    """40 KB/s (320 kbps) behind 150 KB of buffers: unpaced, the picture falls seconds behind for
    good; paced by the terminal's replies, a fraction of that, at the same frame rate. Ratios
    against the unpaced run of the same test (figures: `bench/terminal_link.py`)."""
    seconds = 25.0
    paced, unpaced = compare_over_thin_link(tmp_path, rate=40_000, buffer=150_000, seconds=seconds)
    assert paced.lags and unpaced.lags, "no frames reached the terminal"
    # Without replies the buffers fill: the scenario is real (and this test can fail).
    assert unpaced.quantile(0.5) > 2.0, f"the link never backed up: {unpaced.quantile(0.5):.2f} s"
    assert paced.quantile(0.5) < unpaced.quantile(0.5) / 4, (paced.quantile(0.5), unpaced.quantile(0.5))
    assert paced.quantile(0.95) < unpaced.quantile(0.5) / 2, (paced.quantile(0.95), unpaced.quantile(0.5))
    # The person is told why the picture is choppy (the short form: the status line is 100 wide).
    assert re.search(r"PLAYING · \d+ of \d+ fps shown", paced.status), paced.status
    # Dropping frames at the source costs no frame rate: the link carries as many either way.
    assert paced.fps(seconds) >= 0.7 * unpaced.fps(seconds), (paced.fps(seconds), unpaced.fps(seconds))
