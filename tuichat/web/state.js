// The page's one state object, shared by every module, the Phase it is in, and the device choices
// kept across a reload. One object rather than a variable per module, so that tests and debugging
// can look at all of it through `window.tuichat.state`.

import { BASE_URL } from "./config.js";

/** Where the page is with the room; the title, statuses and tiles follow it. */
export const Phase = Object.freeze({
  OUT: "out",                    // the join form
  JOINING: "joining",            // devices asked for, the join command on its way
  IN: "in",                      // in the room
  RECONNECTING: "reconnecting",  // the connection dropped; what is shown is from before
});

/** What the join form's choices and the mute buttons remember across a reload (this tab only). */
const CHOICES_KEY = "tuichat.devices";

export const state = {
  phase: Phase.OUT,
  name: "",
  signal: null,
  me: null,                 // our participant id
  participants: new Map(),  // id → {id, name, stream}
  mediaSlots: 7,
  resume: null,
  lostReason: "",           // what the server said when it closed the connection last
  publicUrl: BASE_URL,
  shown: new Set(),         // "ts:id" of messages already in the log
  local: { stream: null, video: null, audio: null },  // the tracks we hold: none of what is turned off
  // What we publish: a device we hold a track of, or one turned off that the browser lists (the room
  // sees it as off, not missing, and turning it on asks for it then).
  devices: { audio: false, video: false },
  deviceProblem: null,      // one of DEVICE_PROBLEMS while the camera or microphone cannot be used
  deviceRetried: null,      // when Try again last met that same problem (a Date), else null
  micMuted: false,
  camOff: false,
  call: null,               // the current Call
  published: false,
  assignments: new Map(),   // participant id → slot index
  tiles: new Map(),         // participant id (or "self") → tile
  view: null,               // [width, height, fps] last sent
  // Whom the composer sends to: null is everyone (only ever by the person's choice), else
  // {id, name, gone}. Someone who leaves stays chosen, marked gone, and nothing is sent to them;
  // the same name joining again (a new participant id) is followed. An id counts only with its name:
  // a restarted server hands the same ids to other people.
  recipient: null,
};

export function loadChoices() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(CHOICES_KEY) || "{}");
    state.micMuted = saved.micMuted === true;
    state.camOff = saved.camOff === true;
  } catch {
    // Storage refused (a privacy setting): start unmuted, as without a reload.
  }
}

export function saveChoices() {
  try {
    sessionStorage.setItem(CHOICES_KEY, JSON.stringify({ micMuted: state.micMuted, camOff: state.camOff }));
  } catch {
    // Storage refused: the choice holds until the page is reloaded.
  }
}
