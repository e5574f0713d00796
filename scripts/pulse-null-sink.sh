#!/bin/sh
# Run a private PulseAudio daemon whose only device is a null sink (a clocked, silent speaker) with
# its monitor as the default source, so PortAudio can play and record without a sound card.
#
#   scripts/pulse-null-sink.sh DIR      # runs in the foreground until killed (SIGTERM)
#   . DIR/env                           # in another shell: point ALSA/PortAudio clients at it
#
# DIR holds everything (socket, configs, cookie, log); nothing outside it is touched, so it works
# as root, next to a desktop PulseAudio, and in parallel runs. Needs:
#   apt-get install -y --no-install-recommends pulseaudio libasound2-plugins
set -eu

dir=${1:?usage: $0 RUNTIME_DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rate=${PULSE_NULL_RATE:-48000}

cat > "$dir/default.pa" <<PA
load-module module-null-sink sink_name=tuichat_null rate=$rate channels=1 sink_properties=device.description=tuichat-null
load-module module-native-protocol-unix auth-anonymous=1 socket=$dir/native
set-default-sink tuichat_null
set-default-source tuichat_null.monitor
PA

# Clients must never autospawn a daemon of their own (it would pick the real user's config).
printf 'autospawn = no\n' > "$dir/client.conf"

# The system ALSA config plus: route the default PCM through the pulse plugin.
cat > "$dir/asound.conf" <<ALSA
pcm.!default { type pulse }
ctl.!default { type pulse }
ALSA

cat > "$dir/env" <<ENV
export PULSE_SERVER=unix:$dir/native
export PULSE_CLIENTCONFIG=$dir/client.conf
export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$dir/asound.conf
ENV

# HOME, XDG_* and PULSE_RUNTIME_PATH keep the daemon's state (cookie, pid) inside DIR.
export HOME="$dir" XDG_RUNTIME_DIR="$dir" XDG_CONFIG_HOME="$dir" PULSE_RUNTIME_PATH="$dir" PULSE_STATE_PATH="$dir"
exec pulseaudio -n -F "$dir/default.pa" --daemonize=no --system=false --exit-idle-time=-1 \
    --use-pid-file=no --disallow-exit --log-target=stderr
