// The camera and microphone: asking for them (or as much of them as works), keeping and stopping
// their tracks, and the note saying what stands in the way when they cannot be used. Asking again
// mid-call is the main module's (it also republishes).

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
};

export function mediaDevicesUsable() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/** The camera and microphone, or as much of them as works, and what stands in the way of the rest. */
export async function askForDevices() {
  if (!mediaDevicesUsable()) return { stream: null, problem: DEVICE_PROBLEMS.insecure };
  const ask = (constraints) => navigator.mediaDevices.getUserMedia(constraints);
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } };
  let first;
  try {
    return { stream: await ask({ video, audio: true }), problem: null };
  } catch (error) {
    first = error;
  }
  // A refusal covers both: asking again for each would only be refused again.
  if (first.name === "NotAllowedError" || first.name === "SecurityError") {
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

/**
 * Take ``stream`` as our devices (stopping any earlier ones), muted as chosen. ``retried``: the time
 * of a Try again that met the same problem, which the note then says (the same text again, unchanged,
 * would look as if nothing had happened).
 */
export function useDevices(stream, problem, { retried = null } = {}) {
  if (stream) {
    stopDevices();
    const video = stream.getVideoTracks()[0] || null;
    const audio = stream.getAudioTracks()[0] || null;
    if (video) video.enabled = !state.camOff;
    if (audio) audio.enabled = !state.micMuted;
    state.local = { stream, video, audio };
  }
  const same = Boolean(retried && problem && state.deviceProblem && problem.still === state.deviceProblem.still);
  state.deviceProblem = problem;
  state.deviceRetried = same ? retried : null;
}

export function stopDevices() {
  if (state.local.stream) for (const track of state.local.stream.getTracks()) track.stop();
  state.local = { stream: null, video: null, audio: null };
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
