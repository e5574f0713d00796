// What the page says about itself: the window title, the status bar's three statuses (server,
// media, what we send) and the mute buttons. Everything here is drawn from `state`.

import { ROOM } from "./config.js";
import { $ } from "./dom.js";
import { Phase, state } from "./state.js";

/** One status: its dot's colour (``kind``) and its words, which a small screen hides while connected. */
export function setStatus(id, kind, text) {
  const node = $(id);
  node.dataset.state = kind;
  node.querySelector(".status-text").textContent = text;
  node.title = text;
}

/** "● room · tuichat" in a call, "(reconnecting) room · tuichat" while the server is away. */
export function renderTitle() {
  const title = `${ROOM} · tuichat`;
  if (state.phase === Phase.RECONNECTING) document.title = `(reconnecting) ${title}`;
  else if (state.phase === Phase.IN) document.title = `● ${title}`;
  else document.title = title;
}

export function renderControls() {
  const mic = $("mic");
  const cam = $("cam");
  mic.disabled = !state.devices.audio;
  cam.disabled = !state.devices.video;
  // Fixed labels, the state in aria-pressed: a screen reader says "Mute mic, pressed", never
  // "Unmute mic, pressed" (which reads as the opposite).
  mic.textContent = "Mute mic";
  cam.textContent = "Camera off";
  mic.setAttribute("aria-pressed", String(state.micMuted));
  cam.setAttribute("aria-pressed", String(state.camOff));
}

export function renderPublish() {
  const { audio, video } = state.devices;
  if (!audio && !video) setStatus("publish-status", "idle", "not sending (no camera or microphone)");
  else if (state.phase === Phase.RECONNECTING) setStatus("publish-status", "reconnecting", "not sending while reconnecting");
  else if (!state.published) setStatus("publish-status", "connecting", "not sending yet");
  else {
    const parts = [];
    // "starting": turned on, the browser not done giving it yet (its prompt may be up).
    if (video) parts.push(state.camOff ? "camera off" : state.local.video ? "camera on" : "camera starting");
    if (audio) parts.push(state.micMuted ? "mic muted" : state.local.audio ? "mic on" : "mic starting");
    setStatus("publish-status", "connected", `sending: ${parts.join(", ")}`);
  }
}
