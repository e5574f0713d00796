// The media: one RTCPeerConnection to the server, with the same fixed layout as the terminal
// client's offer (tuichat/server/media.py): our sendonly video and sendonly audio, then
// `media_slots` pairs of recvonly video + audio. Nothing is renegotiated: mute, camera-off and
// devices allowed late use sender.replaceTrack, and `streams` events say which participant is on
// which receive slot. Publishing lives here too; what is sent follows mute.js.

import { LIMITS } from "./config.js";
import { Phase, state } from "./state.js";
import { renderPublish, setStatus } from "./status.js";
import { renderTiles, sendView } from "./tiles.js";
import { muteCommand, resetMuteSync, sendable, syncMutes } from "./mute.js";

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
    if (s === "failed") {
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

export async function startCall() {
  if (state.call) state.call.close();
  resetMuteSync();
  state.published = false;
  renderPublish();
  state.assignments = new Map();
  const call = new Call(state.mediaSlots);
  state.call = call;
  renderTiles();
  setStatus("call-status", "connecting", "media: connecting…");
  try {
    await call.start();
    if (call.closed) return;
    call.ready = true;
    setStatus("call-status", "connected", "media: connected");
    await publish();
  } catch (error) {
    if (call.closed || state.call !== call) return;
    setStatus("call-status", "failed", `media: failed: ${error.message}`);
  }
  renderTiles();
}

export async function publish() {
  const { audio, video } = state.local;
  if (!audio && !video) { renderPublish(); return; }
  // The mutes go first: the server holds them for the publication, so nobody ever sees a muted
  // microphone as on, not even between two messages.
  const mute = muteCommand();
  if (mute) await state.signal.command(mute);
  await state.signal.command({ type: "publish", audio: Boolean(audio), video: Boolean(video) });
  state.published = true;
  renderPublish();
  if (state.call) await state.call.sendLocal();  // an unmute told just now
  syncMutes();  // a click while this was on its way
}
