// Mute and camera-off: what the person chose (state.micMuted, state.camOff), what the room has been
// told (our own participant as the server last described it), and keeping the two in step.
//
// The rule that keeps it private: a medium is sent only while it is chosen on AND the room has been
// told it is on. Muting stops the track at once and then tells the room; unmuting tells the room
// first and sends once the server has acknowledged. A mute on its way counts as told from when it
// is sent (the server may tell the room before we hear back), so turning it on again meanwhile
// waits for the room too. A device turned on that we hold no track of yet (left off when joining,
// or released: camera off stops the camera) is told on only once the browser has given it (main.js
// asks), so the room never sees on what cannot be sent. A mute the server refuses (too many
// commands) is sent again after a wait, the latest choice only, so fast clicking converges on the
// last click; only when refusals go on does the log say so.

import { LIMITS } from "./config.js";
import { Phase, saveChoices, state } from "./state.js";
import { addNotice } from "./messages.js";
import { renderControls, renderPublish } from "./status.js";
import { renderTiles } from "./tiles.js";
import { releaseCamera } from "./devices.js";

/** How many mute commands on their way turn each medium off. */
const turningOff = { audio: 0, video: 0 };

/**
 * What the room has been told: a participant is unmuted until a mute says otherwise, and a mute sent
 * counts from when it is sent (the room may know before we do), not from when the server says so.
 */
export function toldMuted() {
  const stream = state.participants.get(state.me)?.stream;
  return {
    audio: Boolean(stream && stream.audio_muted) || turningOff.audio > 0,
    video: Boolean(stream && stream.video_muted) || turningOff.video > 0,
  };
}

/** Send a mute command on ``signal``; while it is on its way, what it turns off counts as told off. */
export async function sendMute(signal, command) {
  const off = ["audio", "video"].filter((kind) => command[kind] === true);
  for (const kind of off) turningOff[kind] += 1;
  try {
    return await signal.command(command);
  } finally {
    for (const kind of off) turningOff[kind] -= 1;
  }
}

/** The tracks to send now: each only if chosen on and the room has been told it is on, else null. */
export function sendable() {
  const { audio, video } = state.local;
  const told = toldMuted();
  return {
    audio: audio && !state.micMuted && !told.audio ? audio : null,
    video: video && !state.camOff && !told.video ? video : null,
  };
}

/** The mute command that brings the room in line with the choices, or null when it already is. */
export function muteCommand() {
  const { audio, video } = state.local;
  const told = toldMuted();
  // On only with a track to send: turned on and still being asked for is off to the room.
  const muted = { audio: !(audio && !state.micMuted), video: !(video && !state.camOff) };
  const command = { type: "mute" };
  if (state.devices.audio && muted.audio !== told.audio) command.audio = muted.audio;
  if (state.devices.video && muted.video !== told.video) command.video = muted.video;
  return "audio" in command || "video" in command ? command : null;
}

let telling = false;    // a mute command is on its way
let retryTimer = null;  // a refused one waits to go again
let refusals = 0;       // in a row
let warned = false;     // the log said the room has not been told

/** Stop waiting to tell (a new call, leaving): the next call starts from what the server says. */
export function resetMuteSync() {
  clearTimeout(retryTimer);
  retryTimer = null;
  refusals = 0;
  warned = false;
}

async function applySending() {
  if (state.call) await state.call.sendLocal();
}

/**
 * Tell the room the current choices if it does not know them yet; coalesced: while one command is on
 * its way or waiting to be retried, a change is picked up when that one is done.
 */
export function syncMutes() {
  if (telling || retryTimer !== null) return;
  if (state.phase !== Phase.IN || !state.signal) return;
  const command = muteCommand();
  if (!command) {
    if (warned) addNotice("The room now sees your microphone and camera as you set them.");
    refusals = 0;
    warned = false;
    return;
  }
  const signal = state.signal;
  telling = true;
  sendMute(signal, command).then(async () => {
    telling = false;
    refusals = 0;
    await applySending();  // an unmute the room now knows: send the track
    syncMutes();           // a click meanwhile
  }, (error) => {
    telling = false;
    if (state.signal !== signal || state.phase !== Phase.IN) return;  // the rejoin tells the room again
    refusals += 1;
    if (refusals === LIMITS.muteRefusalsShown && !warned) {
      warned = true;
      addNotice(`The room has not been told of your ${what(command)} change yet (the server said: ` +
        `${error.message}); trying again. Until it has, nothing is sent that you turned off.`, "refused");
    }
    const wait = Math.min(LIMITS.muteRetry * 2 ** (refusals - 1), LIMITS.muteRetryMax);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      syncMutes();
    }, wait);
  }).catch((error) => addNotice(`Camera and microphone: ${error.message}`, "refused"));
}

function what(command) {
  if ("audio" in command && "video" in command) return "microphone and camera";
  return "audio" in command ? "microphone" : "camera";
}

/** The mute button: silent at once, the room told after (or, unmuting, before the sound goes out). */
export async function setMic(muted) {
  state.micMuted = muted;
  saveChoices();
  const track = state.local.audio;
  if (track) track.enabled = !muted;
  renderControls();  // at once: the button answers the click, whatever the network does
  renderPublish();
  renderTiles();
  await applySending();
  if (state.published) syncMutes();
}

/**
 * The camera button: off stops the camera at once (its light goes off) and then tells the room; on
 * is a choice here, and the camera is asked for again by the caller (main.js), which tells the room.
 */
export async function setCamera(off) {
  state.camOff = off;
  saveChoices();
  if (off) releaseCamera();
  renderControls();
  renderPublish();
  renderTiles();
  await applySending();
  if (state.published) syncMutes();
}
