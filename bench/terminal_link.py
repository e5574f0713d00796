"""How far behind the picture is when the terminal link itself is thin (video over SSH).

For each link rate: a real server, a bot publishing a noisy camera-like clip, and `tuichat connect`
in a pty behind an emulated link (a buffer the size of what sshd and TCP hold, drained at the
rate into pyte), run twice in the same run: with a terminal that answers the client's cursor
position queries (paced: frames wait for the terminal) and with one that does not (the baseline:
what the buffers do). Prints each frame's lag (read by the terminal minus drawn by the client)
and the frames a second the terminal got. Figures, not pass/fail (`tests/thin_terminal.py`).

    python bench/terminal_link.py                       # 20, 40 and 80 KB/s, 150 KB of buffers
    python bench/terminal_link.py --rates 40 20 5       # the README's figures (make bench)
    python bench/terminal_link.py --rates 40 --buffer 400 --seconds 40
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.thin_terminal

from tests.thin_terminal import SETTLE_S, compare_over_thin_link


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[20, 40, 80], help="link rates, KB/s")
    parser.add_argument("--buffer", type=float, default=150, help="KB held between the client and the terminal")
    parser.add_argument("--seconds", type=float, default=30, help=f"per run (the first {SETTLE_S:g} s not counted)")
    args = parser.parse_args()
    print(f"a noisy 320x240 clip in a 100x30 terminal; {args.buffer:g} KB of buffers; {args.seconds:g} s a run")
    print(f"{'link KB/s':>9}  {'run':<22} {'lag median':>10} {'p95':>8} {'fps':>6}   paced / unpaced lag")
    for rate in args.rates:
        with tempfile.TemporaryDirectory(prefix="tuichat-link-") as tmp:
            paced, unpaced = compare_over_thin_link(Path(tmp), rate=rate * 1000, buffer=int(args.buffer * 1000),
                                                    seconds=args.seconds)
        for name, run in (("paced (answers)", paced), ("unpaced (no answers)", unpaced)):
            ratio = f"{paced.quantile(0.5) / unpaced.quantile(0.5):.3f}" if run is paced else ""
            print(f"{rate:>9g}  {name:<22} {run.quantile(0.5) * 1000:>8.0f}ms {run.quantile(0.95) * 1000:>6.0f}ms "
                  f"{run.fps(args.seconds):>6.1f}   {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
