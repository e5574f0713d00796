// The camera and microphone: asking for them (or as much of them as works), keeping and stopping
// their tracks, and the note saying what stands in the way when they cannot be used. Only what is
// turned on is asked for: a camera left off is neither asked for (no permission prompt) nor opened
// (no camera light), and one turned off is stopped, not only disabled. Asking mid-call (turning one
// on, Try again) is the main module's: it also tells the room.

import { $ } from "./dom.js";
import { Phase, state } from "./state.js";

/** What can stand in the way, in words: ``retry`` offers Try again, and ``still`` starts the note when
 * Try again meets the same problem (with the time), so that pressing it visibly did something. */
const DEVICE_PROBLEMS = {
  insecure: {
    retry: false,
    text: "This address cannot use the camera and microphone: browsers allow them only on https:// " +
      "addresses and on localhost. You can watch and chat, but nobody sees or hears you.",
  },
  denied: {
    retry: true,
    still: "Still not allowed",
    text: "The browser did not allow this page to use your camera and microphone: you can watch and chat, " +
      "but nobody sees or hears you. To allow it, click the camera icon or the padlock beside the address " +
      "and choose Allow, then press Try again.",
  },
  missing: {
    retry: true,
    still: "Still no camera or microphone found",
    text: "No camera or microphone was found: you can watch and chat, but nobody sees or hears you. " +
      "Connect one, then press Try again.",
  },
  busy: {
    retry: true,
    still: "Still could not be started",
    text: "The camera and microphone could not be started; another program may be using them. You can " +
      "watch and chat, but nobody sees or hears you. Close the other program, then press Try again.",
  },
  noCamera: {
    retry: true,
    still: "Still no camera",
    text: "No camera could be used: the others hear you but do not see you. Connect one or close the " +
      "program using it, then press Try again.",
  },
  noMicrophone: {
    retry: true,
    still: "Still no microphone",
    text: "No microphone could be used: the others see you but do not hear you. Connect one or close the " +
      "program using it, then press Try again.",
  },
  // Stopped by the browser while in use (unplugged, or the permission withdrawn): said as what stopped.
  cameraEnded: {
    retry: true,
    still: "Still no camera",
    text: "The camera stopped (unplugged, or no longer allowed): nobody sees you. Connect it, or allow it " +
      "again with the camera icon or the padlock beside the address, then press Try again.",
  },
  microphoneEnded: {
    retry: true,
    still: "Still no microphone",
    text: "The microphone stopped (unplugged, or no longer allowed): nobody hears you. Connect it, or allow " +
      "it again with the camera icon or the padlock beside the address, then press Try again.",
  },
  devicesEnded: {
    retry: true,
    still: "Still no camera or microphone",
    text: "The camera and microphone stopped (unplugged, or no longer allowed): you can watch and chat, but " +
      "nobody sees or hears you. Connect them, or allow them again with the camera icon or the padlock beside " +
      "the address, then press Try again.",
  },
  // Asked for alone (the other was off, or is already in use here): the refusal is about this one.
  cameraDenied: {
    retry: true,
    still: "Still not allowed",
    text: "The browser did not allow this page to use your camera: nobody sees you. To allow it, click the " +
      "camera icon or the padlock beside the address and choose Allow, then press Try again.",
  },
  microphoneDenied: {
    retry: true,
    still: "Still not allowed",
    text: "The browser did not allow this page to use your microphone: nobody hears you. To allow it, click " +
      "the camera icon or the padlock beside the address and choose Allow, then press Try again.",
  },
};

export function mediaDevicesUsable() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/**
 * Ask for the devices in ``wanted`` ({audio, video}: those turned on that we hold no track of), or as
 * much of them as works, and what stands in the way of the rest. Nothing wanted, nothing is asked.
 */
export async function askForDevices(wanted) {
  if (!mediaDevicesUsable()) return { stream: null, problem: DEVICE_PROBLEMS.insecure };
  if (!wanted.audio && !wanted.video) return { stream: null, problem: null };
  const ask = (constraints) => navigator.mediaDevices.getUserMedia(constraints);
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } };
  let first;
  try {
    return { stream: await ask({ video: wanted.video && video, audio: wanted.audio }), problem: null };
  } catch (error) {
    first = error;
  }
  const refused = first.name === "NotAllowedError" || first.name === "SecurityError";
  if (!wanted.audio || !wanted.video) {
    // One asked for alone: the problem is that one's.
    const problem = wanted.video
      ? (refused ? DEVICE_PROBLEMS.cameraDenied : DEVICE_PROBLEMS.noCamera)
      : (refused ? DEVICE_PROBLEMS.microphoneDenied : DEVICE_PROBLEMS.noMicrophone);
    return { stream: null, problem };
  }
  if (refused) {
    // The browser refuses the pair when either one is blocked: the other, not blocked itself, is asked
    // for alone (at once when allowed). Otherwise (both blocked, or a prompt dismissed, or a browser
    // that does not say) asking again for each would only be refused again, or prompt twice more.
    const [camera, microphone] = await Promise.all([permission("camera"), permission("microphone")]);
    if (camera === "denied" && microphone !== "denied") {
      const audioOnly = await ask({ audio: true }).catch(() => null);
      if (audioOnly) return { stream: audioOnly, problem: DEVICE_PROBLEMS.cameraDenied };
    } else if (microphone === "denied" && camera !== "denied") {
      const videoOnly = await ask({ video }).catch(() => null);
      if (videoOnly) return { stream: videoOnly, problem: DEVICE_PROBLEMS.microphoneDenied };
    }
    return { stream: null, problem: DEVICE_PROBLEMS.denied };
  }
  // One may work alone (a laptop without a microphone, a camera in use elsewhere).
  const audioOnly = await ask({ audio: true }).catch(() => null);
  if (audioOnly) return { stream: audioOnly, problem: DEVICE_PROBLEMS.noCamera };
  const videoOnly = await ask({ video }).catch(() => null);
  if (videoOnly) return { stream: videoOnly, problem: DEVICE_PROBLEMS.noMicrophone };
  if (first.name === "NotFoundError" || first.name === "OverconstrainedError") {
    return { stream: null, problem: DEVICE_PROBLEMS.missing };
  }
  if (first.name === "NotReadableError" || first.name === "AbortError") {
    return { stream: null, problem: DEVICE_PROBLEMS.busy };
  }
  return {
    stream: null,
    problem: {
      retry: true,
      still: "Still could not be used",
      text: `The camera and microphone could not be used (${first.message || first.name}): you can watch ` +
        "and chat, but nobody sees or hears you. Press Try again to ask once more.",
    },
  };
}

/** The browser's permission for "camera" or "microphone": granted, denied, prompt, or unknown. */
async function permission(name) {
  try {
    return (await navigator.permissions.query({ name })).state;
  } catch {
    return "unknown";  // no Permissions API, or one that does not know this name
  }
}

/**
 * Which kinds of device the browser lists, asking for none (no prompt, no light): a camera or
 * microphone left off counts as ours when there is one. Before permission the list names no device
 * but still has one of each kind there is; a browser that cannot list is taken to have both.
 */
export async function listDevices() {
  if (!mediaDevicesUsable()) return { audio: false, video: false };
  if (!navigator.mediaDevices.enumerateDevices) return { audio: true, video: true };
  try {
    const kinds = new Set((await navigator.mediaDevices.enumerateDevices()).map((device) => device.kind));
    return { audio: kinds.has("audioinput"), video: kinds.has("videoinput") };
  } catch {
    return { audio: true, video: true };
  }
}

const KINDS = ["audio", "video"];
const isOff = (kind) => (kind === "audio" ? state.micMuted : state.camOff);

/** state.local.stream: the tracks we hold, together (the self view shows it). */
function regroup() {
  const tracks = [state.local.video, state.local.audio].filter(Boolean);
  state.local.stream = tracks.length ? new MediaStream(tracks) : null;
}

/**
 * Take what an ask brought (``stream``, ``problem``, for ``wanted``) into state.local, keeping the
 * tracks it did not replace, and work out state.devices: what we publish. ``listed``
 * (listDevices()) counts a device left off by choice. ``retried``: the time of a Try again that met
 * the same problem, which the note then says (the same text again, unchanged, would look as if
 * nothing had happened).
 */
export function useDevices(stream, problem, { wanted, listed = null, retried = null }) {
  for (const kind of KINDS) {
    const track = stream ? (kind === "video" ? stream.getVideoTracks() : stream.getAudioTracks())[0] : null;
    if (track && kind === "video" && state.camOff) {
      track.stop();  // turned off again while the browser was asking: not opened for nothing
      state.devices.video = true;
      continue;
    }
    if (track) {
      if (state.local[kind]) state.local[kind].stop();
      track.enabled = !isOff(kind);
      state.local[kind] = track;
      track.addEventListener("ended", () => trackEnded(kind, track), { once: true });
    }
    if (state.local[kind]) state.devices[kind] = true;
    else if (wanted[kind] && !isOff(kind)) state.devices[kind] = false;  // asked for, not had: "no camera"
    else if (isOff(kind) && listed) state.devices[kind] = listed[kind];
    // Else on but not asked for here (asked for by another ask under way, or it failed), or turned
    // off again while the browser was asking and not had: as it was (off, not "no camera").
  }
  regroup();
  // What the ask met is not a problem when all it asked for has been turned off meanwhile (a prompt
  // dismissed after turning the camera off again). A problem met before, about one still missing,
  // stays until that one is had or turned off.
  const moot = KINDS.some((kind) => wanted[kind]) && !KINDS.some((kind) => wanted[kind] && !isOff(kind));
  const missing = KINDS.some((kind) => !isOff(kind) && !state.local[kind]);
  const current = (moot ? null : problem) || (missing ? state.deviceProblem : null);
  const same = Boolean(retried && current && state.deviceProblem && current.still === state.deviceProblem.still);
  state.deviceProblem = current;
  state.deviceRetried = same ? retried : null;
}

/** Told when a device we hold stops by itself, with state.devices as it was (main.js tells the room). */
let onTrackEnded = () => {};

export function whenTrackEnds(callback) {
  onTrackEnded = callback;
}

/**
 * A track of ours the browser ended (the camera unplugged, the permission withdrawn in the browser's
 * settings): let it go. One turned on is then "no camera" (or "no mic"), with a note and Try again;
 * one turned off is as if released (turning it on asks for it again).
 */
function trackEnded(kind, track) {
  if (state.local[kind] !== track) return;  // stopped by us and let go already, or replaced
  const before = { ...state.devices };
  state.local[kind] = null;
  regroup();
  if (!isOff(kind)) {
    state.devices[kind] = false;
    // Both at once (a permission withdrawn ends both, one after the other): said together.
    const otherEnded = kind === "video" ? DEVICE_PROBLEMS.microphoneEnded : DEVICE_PROBLEMS.cameraEnded;
    state.deviceProblem = state.deviceProblem === otherEnded ? DEVICE_PROBLEMS.devicesEnded
      : kind === "video" ? DEVICE_PROBLEMS.cameraEnded : DEVICE_PROBLEMS.microphoneEnded;
    state.deviceRetried = null;
  }
  onTrackEnded(before);
}

/** Camera off: stop the camera (its light goes off), not only disable the track. */
export function releaseCamera() {
  if (!state.local.video) return;
  state.local.video.stop();
  state.local.video = null;
  regroup();
}

export function stopDevices() {
  for (const kind of KINDS) if (state.local[kind]) state.local[kind].stop();
  state.local = { stream: null, video: null, audio: null };
  state.devices = { audio: false, video: false };
}

const timeOfDay = (date) => date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export function renderDeviceNote() {
  const problem = state.phase === Phase.OUT ? null : state.deviceProblem;
  $("device-note").hidden = !problem;
  let text = problem ? problem.text : "";
  if (problem && state.deviceRetried) text = `${problem.still} (asked again at ${timeOfDay(state.deviceRetried)}). ${text}`;
  $("device-note-text").textContent = text;
  $("device-retry").hidden = !(problem && problem.retry);
}
