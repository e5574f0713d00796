// The camera and microphone: asking for them (or as much of them as works), keeping and stopping
// their tracks, and the note saying what stands in the way when they cannot be used. Asking again
// mid-call is the main module's (it also republishes).

import { $ } from "./dom.js";
import { Phase, state } from "./state.js";

const DEVICE_PROBLEMS = {
  insecure: {
    retry: false,
    text: "This address cannot use the camera and microphone: browsers allow them only on https:// " +
      "addresses and on localhost. You can watch and chat, but nobody sees or hears you.",
  },
  denied: {
    retry: true,
    text: "The browser did not allow this page to use your camera and microphone: you can watch and chat, " +
      "but nobody sees or hears you. To allow it, click the camera icon or the padlock beside the address " +
      "and choose Allow, then press Try again.",
  },
  missing: {
    retry: true,
    text: "No camera or microphone was found: you can watch and chat, but nobody sees or hears you. " +
      "Connect one, then press Try again.",
  },
  busy: {
    retry: true,
    text: "The camera and microphone could not be started; another program may be using them. You can " +
      "watch and chat, but nobody sees or hears you. Close the other program, then press Try again.",
  },
  noCamera: {
    retry: true,
    text: "No camera could be used: the others hear you but do not see you. Connect one or close the " +
      "program using it, then press Try again.",
  },
  noMicrophone: {
    retry: true,
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
      text: `The camera and microphone could not be used (${first.message || first.name}): you can watch ` +
        "and chat, but nobody sees or hears you. Press Try again to ask once more.",
    },
  };
}

/** Take ``stream`` as our devices (stopping any earlier ones), muted as chosen. */
export function useDevices(stream, problem) {
  if (stream) {
    stopDevices();
    const video = stream.getVideoTracks()[0] || null;
    const audio = stream.getAudioTracks()[0] || null;
    if (video) video.enabled = !state.camOff;
    if (audio) audio.enabled = !state.micMuted;
    state.local = { stream, video, audio };
  }
  state.deviceProblem = problem;
}

export function stopDevices() {
  if (state.local.stream) for (const track of state.local.stream.getTracks()) track.stop();
  state.local = { stream: null, video: null, audio: null };
}

export function renderDeviceNote() {
  const problem = state.phase === Phase.OUT ? null : state.deviceProblem;
  $("device-note").hidden = !problem;
  $("device-note-text").textContent = problem ? problem.text : "";
  $("device-retry").hidden = !(problem && problem.retry);
}
