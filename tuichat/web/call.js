// The media: one RTCPeerConnection to the server, with the same fixed layout as the terminal
// client's offer (tuichat/server/media.py): our sendonly video and sendonly audio, then
// `media_slots` pairs of recvonly video + audio. Nothing is renegotiated: mute, camera-off and
// devices allowed late use sender.replaceTrack, and `streams` events say which participant is on
// which receive slot. Publishing lives here too; what is sent follows mute.js. A call that does not
// come up is set up again with backoff, a bounded number of times; then the stage says so, with a
// Try again.

import { LIMITS } from "./config.js";
import { $, seconds } from "./dom.js";
import { Phase, state } from "./state.js";
import { renderPublish, setStatus } from "./status.js";
import { renderTiles, sendView } from "./tiles.js";
import { muteCommand, resetMuteSync, sendable, sendMute, syncMutes } from "./mute.js";
import { CommandError } from "./signal.js";

class Call {
  constructor(slots) {
    this.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.closed = false;
    this.ready = false;  // connected and ready to publish
    this.answer = null;
    const { video, audio } = sendable();
    this.video = this.pc.addTransceiver(video || "video", { direction: "sendonly" });
    this.audio = this.pc.addTransceiver(audio || "audio", { direction: "sendonly" });
    this.slots = [];
    for (let k = 0; k < slots; k++) {
      const v = this.pc.addTransceiver("video", { direction: "recvonly" });
      const a = this.pc.addTransceiver("audio", { direction: "recvonly" });
      this.slots.push({ stream: new MediaStream([v.receiver.track, a.receiver.track]) });
    }
    this.pc.onconnectionstatechange = () => this.onConnectionState();
  }

  async start() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await this.gathered();
    if (this.closed) return;
    // The server keeps the view per connection: send it before the offer so slots start right.
    state.view = null;
    await sendView();
    await state.signal.command({ type: "offer", sdp: this.pc.localDescription.sdp });
    if (this.closed) return;
    if (!this.answer) throw new Error("the server acknowledged the offer without an answer");
    await this.pc.setRemoteDescription({ type: "answer", sdp: this.answer });
    await this.connected();
  }

  gathered() {
    // The server takes no trickled candidates: wait until all of ours are in the offer.
    const pc = this.pc;
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const timer = setTimeout(resolve, LIMITS.iceGatherTimeout);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  connected() {
    const pc = this.pc;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pc.connectionState === "connected") { cleanup(); resolve(); }
        else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
          cleanup(); reject(new Error(`the media connection ${pc.connectionState}`));
        }
      };
      const timer = setTimeout(() => { cleanup(); reject(new Error("the media connection did not come up")); },
        LIMITS.connectTimeout);
      const cleanup = () => { clearTimeout(timer); pc.removeEventListener("connectionstatechange", check); };
      pc.addEventListener("connectionstatechange", check);
      check();
    });
  }

  onConnectionState() {
    if (this.closed || state.call !== this) return;
    const s = this.pc.connectionState;
    // Before the call is ready, a failure is start()'s to report (it rejects, and startCall retries):
    // restarting from here too would set up two peer connections.
    if (s === "failed" && this.ready) {
      setStatus("call-status", "failed", "media: failed; retrying");
      setTimeout(() => { if (state.call === this && state.phase === Phase.IN) startCall(); }, LIMITS.restartDelay);
    } else if (s === "disconnected") {
      setStatus("call-status", "reconnecting", "media: interrupted");
    } else if (s === "connected") {
      setStatus("call-status", "connected", "media: connected");
    }
  }

  /**
   * Send what the devices, the mute choices and the room's view of them allow now (mute.js); no
   * renegotiation: the senders exist. Both at once, so the latest call's choice is the one that holds.
   */
  async sendLocal() {
    if (this.closed) return;
    const { video, audio } = sendable();
    await Promise.all([this.video.sender.replaceTrack(video), this.audio.sender.replaceTrack(audio)]);
  }

  close() {
    this.closed = true;
    this.pc.close();
  }
}

/** The next attempt of a call that did not come up, while one is pending. */
let retryTimer = null;

/**
 * A new call (closing the one before): from the first attempt when joining, rejoining, after a
 * call that was up failed or on Try again; ``attempt`` > 1 when a failed attempt is set up again.
 */
export async function startCall({ attempt = 1 } = {}) {
  cancelRetries();
  if (state.call) state.call.close();
  resetMuteSync();
  state.published = false;
  renderPublish();
  state.assignments = new Map();
  const call = new Call(state.mediaSlots);
  state.call = call;
  renderTiles();
  setStatus("call-status", "connecting",
    attempt > 1 ? `media: connecting… (attempt ${attempt} of ${LIMITS.mediaAttempts})` : "media: connecting…");
  try {
    await call.start();
    if (call.closed) return;
  } catch (error) {
    if (!call.closed && state.call === call) callFailed(call, error, attempt);
    renderTiles();
    return;
  }
  call.ready = true;  // up: a later failure starts again from the first attempt
  setStatus("call-status", "connected", "media: connected");
  try {
    await publish();
  } catch (error) {
    // The media is up; only telling the room what we send did not go through (a drop says so itself).
    if (state.call === call && state.phase === Phase.IN) {
      setStatus("publish-status", "failed", `not sending: ${error.message}`);
    }
  }
  renderTiles();
}

/** A call that did not come up: set it up again after a wait, or, after the last attempt, say so. */
function callFailed(call, error, attempt) {
  call.close();  // its peer connection goes now, not when the next one replaces it
  const reason = error.message.replace(/\.+$/, "");
  if (attempt >= LIMITS.mediaAttempts) {
    setStatus("call-status", "failed", `media: failed after ${attempt} attempts (${reason})`);
    // The server's refusal says what is wrong; a connection that never came up is most often the network.
    const network = error instanceof CommandError ? ""
      : " If this keeps happening, a firewall may be blocking UDP between this browser and the server.";
    $("media-note-text").textContent = `Video and sound could not be connected: ${reason} (tried ${attempt} ` +
      `times). You can still chat.${network}`;
    $("media-note").hidden = false;
    return;
  }
  const delay = Math.min(LIMITS.mediaRetryInitial * 2 ** (attempt - 1), LIMITS.backoffMax);
  setStatus("call-status", "reconnecting", `media: failed (${reason}); trying again in ${seconds(delay)} s ` +
    `(attempt ${attempt + 1} of ${LIMITS.mediaAttempts})`);
  retryTimer = setTimeout(() => {
    retryTimer = null;
    if (state.call === call && state.phase === Phase.IN) startCall({ attempt: attempt + 1 });
  }, delay);
}

/** No retry pending and no "gave up" note: a new call is starting, or the room is gone for now. */
export function cancelRetries() {
  clearTimeout(retryTimer);
  retryTimer = null;
  $("media-note").hidden = true;
}

/** Try again, after the page gave up: a new call from the first attempt, in the same room. */
export function retryCall() {
  if (state.phase === Phase.IN) startCall();
}

export async function publish() {
  const { audio, video } = state.devices;
  // Nothing to publish: nothing to say, unless a device the room knows of has gone (then publishing
  // nothing is how the server hears of it).
  if (!audio && !video && !state.published) { renderPublish(); return; }
  // The mutes go first: the server holds them for the publication, so nobody ever sees a muted
  // microphone as on, not even between two messages.
  const mute = muteCommand();
  if (mute) await sendMute(state.signal, mute);
  await state.signal.command({ type: "publish", audio, video });
  state.published = true;
  renderPublish();
  if (state.call) await state.call.sendLocal();  // an unmute told just now
  syncMutes();  // a click while this was on its way
}
