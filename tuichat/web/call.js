// The media: one RTCPeerConnection to the server, with the same fixed layout as the terminal
// client's offer (tuichat/server/media.py): our sendonly video and sendonly audio, then
// `media_slots` pairs of recvonly video + audio. Nothing is renegotiated: mute, camera-off and
// devices allowed late use sender.replaceTrack, and `streams` events say which participant is on
// which receive slot. Publishing and the mute buttons' effects live here too.

import { LIMITS } from "./config.js";
import { Phase, saveChoices, state } from "./state.js";
import { renderControls, renderPublish, setStatus } from "./status.js";
import { renderTiles, sendView } from "./tiles.js";

class Call {
  constructor(slots) {
    this.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
    this.closed = false;
    this.ready = false;  // connected and ready to publish
    this.answer = null;
    const { video, audio } = state.local;
    this.video = this.pc.addTransceiver(video && !state.camOff ? video : "video", { direction: "sendonly" });
    this.audio = this.pc.addTransceiver(audio && !state.micMuted ? audio : "audio", { direction: "sendonly" });
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

  /** Send what the devices and the mute choices say now (no renegotiation: the senders exist). */
  async sendLocal() {
    if (this.closed) return;
    const { video, audio } = state.local;
    await this.video.sender.replaceTrack(video && !state.camOff ? video : null);
    await this.audio.sender.replaceTrack(audio && !state.micMuted ? audio : null);
  }

  close() {
    this.closed = true;
    this.pc.close();
  }
}

export async function startCall() {
  if (state.call) state.call.close();
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
  if (state.micMuted || state.camOff) {
    await state.signal.command({ type: "mute", audio: state.micMuted, video: state.camOff });
  }
  await state.signal.command({ type: "publish", audio: Boolean(audio), video: Boolean(video) });
  state.published = true;
  renderPublish();
}

export async function setMic(muted) {
  state.micMuted = muted;
  saveChoices();
  const track = state.local.audio;
  if (track) track.enabled = !muted;
  renderControls();  // at once: the button answers the click, whatever the network does
  renderPublish();
  renderTiles();
  if (state.call) await state.call.sendLocal();
  if (state.published) await state.signal.command({ type: "mute", audio: muted || !track });
}

export async function setCamera(off) {
  state.camOff = off;
  saveChoices();
  const track = state.local.video;
  if (track) track.enabled = !off;
  renderControls();
  renderPublish();
  renderTiles();
  if (state.call) await state.call.sendLocal();
  if (state.published) await state.signal.command({ type: "mute", video: off || !track });
}
