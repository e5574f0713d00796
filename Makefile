# tuichat: every target installs what it needs first, so each works as the first command on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages: python3-venv (Debian splits `python3 -m venv` out), PortAudio for sounddevice,
# PulseAudio (a clocked null sink for audio tests), tmux for real-terminal tests, Chromium and
# Firefox for the browser tests.
APT_PACKAGES := python3-venv libportaudio2 pulseaudio libasound2-plugins tmux chromium firefox-esr

.PHONY: install system-packages test demo screenshots lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: install
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/tuichat demo

screenshots: install
	$(BIN)/python scripts/screenshots.py
	$(BIN)/python scripts/browser_screenshot.py

lint: install
	$(BIN)/ruff check tuichat tests bench scripts
	$(BIN)/mypy tuichat

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

CLIPS := bench/clips/webcam.mp4 bench/clips/webcam-16x9.mp4 bench/clips/seated-16x9.mp4 bench/clips/handheld.mp4

bench/clips/webcam-16x9.mp4: bench/make_clip.py | $(BENCH_STAMP)
	$(BIN)/python bench/make_clip.py --scene webcam --size 640x360 --out $@

bench/clips/seated-16x9.mp4: bench/make_clip.py | $(BENCH_STAMP)
	$(BIN)/python bench/make_clip.py --scene seated --size 640x360 --out $@

bench/clips/%.mp4: bench/make_clip.py | $(BENCH_STAMP)
	$(BIN)/python bench/make_clip.py --scene $*

# Figures, not pass/fail: each bench prints its numbers and ratios against a baseline of the same run.
# The webcam clip is the footage the targets are set for; the handheld one is the hard case.
bench: $(BENCH_STAMP) $(CLIPS)
	$(BIN)/python bench/render_cells.py
	$(BIN)/python bench/terminal_bytes.py bench/clips/webcam.mp4
	$(BIN)/python bench/terminal_bytes.py bench/clips/handheld.mp4 --no-timg
	$(BIN)/python bench/terminal_bytes.py bench/clips/webcam.mp4 --e2e --no-timg
	$(BIN)/python bench/terminal_bytes.py bench/clips/webcam-16x9.mp4 --e2e --no-timg
	$(BIN)/python bench/terminal_bytes.py bench/clips/seated-16x9.mp4 --e2e --no-timg
	$(BIN)/python bench/terminal_bytes.py bench/clips/handheld.mp4 --e2e --no-timg
	$(BIN)/python bench/terminal_bytes.py bench/clips/webcam.mp4 --e2e --preview --no-timg
	$(BIN)/python bench/terminal_link.py --rates 40 20 5
	$(BIN)/python bench/latency.py --compare
	$(BIN)/python bench/network.py --clip bench/clips/webcam.mp4
	$(BIN)/python bench/network.py --clip bench/clips/handheld.mp4
	$(BIN)/python bench/server_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
