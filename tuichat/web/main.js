// tuichat in the browser: the room protocol over a WebSocket (signal.js) and one RTCPeerConnection
// to the server (call.js). This module wires the page together: the join form, room events,
// losing the server and rejoining, leaving, and the event handlers; the other modules each hold
// one part of the page and share `state` (state.js). Everything other people send (names,
// messages) goes into the page with textContent or as text nodes, never parsed as HTML. Standard
// APIs only, so it runs in Chromium and Firefox.

import { LIMITS, NAME_MAX, ROOM, WS_URL } from "./config.js";
import { $, CharacterLimit, charactersWere, seconds } from "./dom.js";
import { loadChoices, Phase, saveChoices, state } from "./state.js";
import { CommandError, Signal } from "./signal.js";
import {
  askForDevices, listDevices, mediaDevicesUsable, renderDeviceNote, stopDevices, useDevices, whenTrackEnds,
} from "./devices.js";
import { renderControls, renderPublish, renderTitle, setStatus } from "./status.js";
import { chooseRecipient, renderPeople, trackRecipient } from "./people.js";
import { layoutGrid, renderTiles, viewLater } from "./tiles.js";
import { cancelRetries, publish, retryCall, startCall } from "./call.js";
import { resetMuteSync, setCamera, setMic, syncMutes } from "./mute.js";
import { addMessage, addNotice, followLog } from "./messages.js";
import { fitComposer, initComposer, keepWithinLimit, onComposerKey, sendMessage } from "./composer.js";
import { copyInvite, renderInvite } from "./invite.js";

/** Codes of a refused join that are about the name: the name field is the way forward. */
const NAME_CODES = new Set(["invalid_name", "name_taken"]);

// --- room events ---------------------------------------------------------------------------------

function onEvent(message) {
  switch (message.type) {
    case "state": {
      state.me = message.you.id;
      state.resume = message.resume;
      state.mediaSlots = message.media_slots ?? 7;
      if (message.public_url) state.publicUrl = message.public_url;
      state.participants = new Map(message.participants.map((p) => [p.id, p]));
      trackRecipient();
      for (const chat of message.history) addMessage(chat);
      renderInvite();
      renderPeople();
      renderTiles();
      break;
    }
    case "joined":
      state.participants.set(message.participant.id, message.participant);
      trackRecipient();
      addNotice(`${message.participant.name} joined`);
      renderPeople();
      renderTiles();
      break;
    case "left":
      state.participants.delete(message.participant.id);
      trackRecipient();
      addNotice(`${message.participant.name} left${leftBecause(message.reason)}`);
      renderPeople();
      renderTiles();
      break;
    case "published":
    case "unpublished":
    case "updated":
      state.participants.set(message.participant.id, message.participant);
      renderPeople();
      renderTiles();
      break;
    case "message":
      addMessage(message.message);
      break;
    case "answer":
      if (state.call) state.call.answer = message.sdp;
      break;
    case "streams":
      state.assignments = new Map(message.assignments.map((a) => [a.participant, a.slot]));
      renderTiles();
      break;
    default:
      break;
  }
}

/** The reason of a LEFT worth showing: "connection lost" adds something, "left" only repeats the verb. */
function leftBecause(reason) {
  return reason && reason !== "left" ? ` (${reason})` : "";
}

// --- joining, losing the server, rejoining, leaving ----------------------------------------------

/** A refused join in plain words, with the server's reason and what to do about it. */
function refusal(error) {
  const reason = error.message.replace(/\.+$/, "");
  switch (error.code) {
    case "invalid_name": return `That name can't be used: ${reason}. Choose another name.`;
    case "name_taken": return `That name is taken: ${reason}. Choose another name.`;
    case "room_full": return `The room is full: ${reason}. Try again when someone has left.`;
    case "invalid_room": return `That room name does not work: ${reason}.`;
    default: return `The server refused: ${reason}.`;
  }
}

async function joinRoom() {
  const signal = state.signal;
  const join = { type: "join", room: ROOM, name: state.name };
  if (state.resume) join.resume = state.resume;
  await signal.command(join);  // STATE arrives before the ack
  if (state.signal !== signal) return;
  signal.settled();
  const back = state.phase === Phase.RECONNECTING;
  state.phase = Phase.IN;
  setStatus("session-status", "connected", "server: connected");
  if (back) addNotice("Reconnected.");
  renderTitle();
  renderPeople();
  renderPublish();
  startCall();
}

async function join(name) {
  if (state.phase !== Phase.OUT) return;
  state.phase = Phase.JOINING;
  state.name = name;
  $("join-button").disabled = true;
  $("join-error").textContent = "";
  $("join-notice").textContent = "";
  // Only what is turned on: a camera left off gets no prompt and no light until it is turned on.
  const wanted = { audio: !state.micMuted, video: !state.camOff };
  const { stream, problem } = await askForDevices(wanted);
  const listed = wanted.audio && wanted.video ? null : await listDevices();
  useDevices(stream, problem, { wanted, listed });
  const signal = new Signal(WS_URL, { onEvent, onLost: onConnectionLost, onRetry, onReopen });
  state.signal = signal;
  try {
    setStatus("session-status", "connecting", "server: connecting…");
    await openWhileBusy(signal);
    await joinRoom();
  } catch (error) {
    endCall();
    const refused = error instanceof CommandError;
    showJoinView({
      error: refused ? refusal(error) : `Could not join: ${error.message}.`,
      focus: refused && !NAME_CODES.has(error.code) ? "join-button" : "join-name",
    });
    return;
  }
  const url = new URL(location.href);
  url.searchParams.set("name", name);
  history.replaceState(null, "", url.href);
  $("join-view").hidden = true;
  $("call-view").hidden = false;
  followLog();
  $("statusbar").hidden = false;
  renderDeviceNote();
  renderControls();
  layoutGrid();
  $("text").focus({ preventScroll: true });  // a phone's stacked view stays at the tiles
}

/**
 * Open the connection; a server at its connection limit is tried again a few times, the wait
 * doubling, the join form saying so meanwhile (its button stays disabled: the join is under way).
 */
async function openWhileBusy(signal) {
  for (let attempt = 1; ; attempt++) {
    try {
      await signal.open();
      $("join-notice").textContent = "";
      return;
    } catch (error) {
      if (!error.busy || state.signal !== signal) throw error;
      if (attempt >= LIMITS.busyAttempts) throw new Error(`${error.message}; try again in a minute`);
      const delay = Math.min(LIMITS.busyRetryInitial * 2 ** (attempt - 1), LIMITS.backoffMax);
      $("join-notice").textContent = `${capitalized(error.message)}. Trying again in ${seconds(delay)} s ` +
        `(attempt ${attempt + 1} of ${LIMITS.busyAttempts})…`;
      await new Promise((resolve) => { setTimeout(resolve, delay); });
      if (state.signal !== signal) throw error;
    }
  }
}

const capitalized = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The connection dropped: say so once, with the server's reason, and mark what is shown as from before. */
function onConnectionLost(reason) {
  if (state.phase !== Phase.IN) return;
  state.phase = Phase.RECONNECTING;
  state.lostReason = reason;
  addNotice(reason ? `Connection lost: ${reason}; reconnecting…` : "Connection lost; reconnecting…");
  // The media went with the connection; a new call starts once the room has taken us back.
  cancelRetries();
  if (state.call) state.call.close();
  state.published = false;
  setStatus("call-status", "reconnecting", "media: paused until the server is back");
  renderPublish();
  renderPeople();
  renderTiles();
  renderTitle();
}

function onRetry(attempt, delay, failure) {
  let what;
  if (failure && failure.busy) what = failure.message.replace(/^the server is /, "");  // "busy (…)"
  else if (failure) what = "not reachable";
  else what = state.lostReason === "the server is shutting down" ? "shutting down" : "connection lost";
  setStatus("session-status", "reconnecting", `server: ${what}; trying again in ${seconds(delay)} s (attempt ${attempt})`);
}

async function onReopen() {
  const signal = state.signal;
  if (!signal) return;
  setStatus("session-status", "connecting", "server: rejoining…");
  try {
    await joinRoom();
  } catch (error) {
    if (state.signal !== signal) return;
    if (error instanceof CommandError) {
      // Refused (after a restart someone else has the name, or the room is full): trying again
      // would not change that, so leave the call and let the person choose.
      endCall();
      showJoinView({ error: `Could not rejoin after the connection dropped. ${refusal(error)}`, focus: "join-name" });
    } else {
      signal.restart();  // the connection is there but the join did not go through: try again
    }
  }
}

async function leave() {
  const signal = state.signal;
  state.phase = Phase.OUT;  // a drop while saying goodbye is not an outage
  if (signal && signal.ws && signal.ws.readyState === WebSocket.OPEN) {
    await Promise.race([signal.command({ type: "leave" }).catch(() => {}),
      new Promise((resolve) => setTimeout(resolve, LIMITS.leaveTimeout))]);
  }
  endCall();
  showJoinView({ notice: "You left the room.", focus: "join-button" });
}

/** Out of the room: connection, call and devices closed, the room's people and tiles gone. */
function endCall() {
  if (state.signal) state.signal.close();
  state.signal = null;
  cancelRetries();
  if (state.call) state.call.close();
  state.call = null;
  stopDevices();
  state.phase = Phase.OUT;
  state.resume = null;
  state.published = false;
  resetMuteSync();
  state.participants = new Map();
  state.recipient = null;
  state.assignments = new Map();
  state.deviceProblem = null;
  state.deviceRetried = null;
  for (const tile of state.tiles.values()) tile.root.remove();
  state.tiles.clear();
  setStatus("session-status", "new", "not connected");
  setStatus("call-status", "new", "media off");
  setStatus("publish-status", "new", "not sending");
  renderPeople();
  renderDeviceNote();
  renderTitle();
}

/** The join form, with a refusal (in the error colour) or a notice, and the focus where it helps. */
function showJoinView({ error = "", notice = "", focus = "join-name" }) {
  $("call-view").hidden = true;
  $("statusbar").hidden = true;
  $("join-view").hidden = false;
  $("join-button").disabled = false;
  $("join-error").textContent = error;
  $("join-notice").textContent = notice;
  $("join-name").value = state.name;
  renderJoinForm();
  renderTitle();
  const target = $(focus);
  target.focus();
  if (focus === "join-name") target.select();
}

function onJoinSubmit(event) {
  event.preventDefault();
  const typed = $("join-name").value;
  const name = typed.trim();
  const problem = !typed ? "Type a name to join."
    : !name ? "A name can't be only spaces: type at least one letter, number or sign." : "";
  if (problem) {
    $("join-notice").textContent = "";
    $("join-error").textContent = problem;
    $("join-name").focus();
    return;
  }
  join(name);
}

/** The join form's device choices, and a button that says what joining will do. */
function renderJoinForm() {
  const usable = mediaDevicesUsable();
  $("join-insecure").hidden = usable;
  $("join-devices").hidden = !usable;
  $("join-hint").hidden = !usable;
  $("join-cam").checked = !state.camOff;
  $("join-mic").checked = !state.micMuted;
  let label;
  if (!usable) label = "Join to watch and chat";
  else if (state.micMuted && state.camOff) label = "Join muted with camera off";
  else if (state.micMuted) label = "Join muted";
  else if (state.camOff) label = "Join with camera off";
  else label = "Join with camera and microphone";
  $("join-button").textContent = label;
}

// --- the camera and microphone, asked for again in the call --------------------------------------

/** The kinds being asked for now: a second click while the browser asks does not ask twice. */
const asking = new Set();

/**
 * Ask for what is turned on that we hold no track of, of ``kinds`` (a device turned on: that one
 * alone, so the camera button never asks for a microphone; Try again: both, ``retried`` its time),
 * use what comes, and tell the room (devicesChanged).
 */
async function askAgain({ kinds = ["audio", "video"], retried = null } = {}) {
  const wanted = {
    audio: kinds.includes("audio") && !state.micMuted && !state.local.audio && !asking.has("audio"),
    video: kinds.includes("video") && !state.camOff && !state.local.video && !asking.has("video"),
  };
  if (!wanted.audio && !wanted.video && !retried) return;
  const asked = ["audio", "video"].filter((kind) => wanted[kind]);
  for (const kind of asked) asking.add(kind);
  try {
    const { stream, problem } = await askForDevices(wanted);
    // Try again also looks again for a device left off (one plugged in, or allowed, meanwhile).
    const listed = retried ? await listDevices() : null;
    if (state.phase === Phase.OUT) {
      if (stream) for (const track of stream.getTracks()) track.stop();
      return;
    }
    const before = { ...state.devices };
    useDevices(stream, problem, { wanted, listed, retried });
    await devicesChanged(before);
  } finally {
    for (const kind of asked) asking.delete(kind);
  }
}

/**
 * What we hold changed (``before``: state.devices until then): show it, and tell the room,
 * publishing again when what we publish changed (a device had at last, or one that could not be
 * started or stopped: then "no camera"), else only the mutes; what was turned on is sent once the
 * room has been told (mute.js).
 */
async function devicesChanged(before) {
  renderDeviceNote();
  renderControls();
  renderPublish();
  renderTiles();
  const call = state.call;
  if (!call) return;
  const changed = before.audio !== state.devices.audio || before.video !== state.devices.video;
  if (changed && state.phase === Phase.IN && call.ready && state.call === call) {
    await publish();  // the mutes first, then the publication, then the tracks
  } else {
    await call.sendLocal();
    if (state.published) syncMutes();
  }
}

/** A device we held stopped by itself (devices.js): the note says so and the room is told. */
async function trackEnded(before) {
  if (state.phase === Phase.OUT) return;
  try {
    await devicesChanged(before);
  } catch (error) {
    addNotice(`Camera and microphone: ${error.message}`, "refused");
  }
}

/** Try again, on the note about devices: the button says it is asking meanwhile. */
async function retryDevices() {
  const button = $("device-retry");
  button.disabled = true;
  button.textContent = "Asking…";  // the browser may answer at once (still refused) or show its prompt
  try {
    await askAgain({ retried: new Date() });
  } catch (error) {
    addNotice(`Camera and microphone: ${error.message}`, "refused");
  } finally {
    button.disabled = false;
    button.textContent = "Try again";
  }
}

/** The mute and camera buttons: the choice at once (mute.js); one turned on is asked for if need be. */
async function toggle(kind) {
  try {
    if (kind === "video") await setCamera(!state.camOff);
    else await setMic(!state.micMuted);
    await askAgain({ kinds: [kind] });
  } catch (error) {
    addNotice(`Camera and microphone: ${error.message}`, "refused");
  }
}

// --- wiring --------------------------------------------------------------------------------------

/** The name field holds at most the server's limit in characters (code points, as for messages). */
let nameLimit = null;
let nameNote = "";  // the note about it in the form, while shown

function onNameInput() {
  const leftOut = nameLimit.check();
  const notice = $("join-notice");
  if (!leftOut && notice.textContent !== nameNote) return;  // "You left the room." stays
  nameNote = leftOut ? `A name holds at most ${NAME_MAX} characters: ${charactersWere(leftOut)} left out.` : "";
  notice.textContent = nameNote;
}

function init() {
  const params = new URLSearchParams(location.search);
  $("join-name").value = params.get("name") || "";
  nameLimit = new CharacterLimit($("join-name"), NAME_MAX);
  $("join-name").addEventListener("input", onNameInput);
  initComposer({ quit: () => leave() });
  loadChoices();
  renderJoinForm();
  renderInvite();
  renderTitle();
  $("join-form").addEventListener("submit", onJoinSubmit);
  $("join-mic").addEventListener("change", (event) => {
    state.micMuted = !event.target.checked;
    saveChoices();
    renderJoinForm();
  });
  $("join-cam").addEventListener("change", (event) => {
    state.camOff = !event.target.checked;
    saveChoices();
    renderJoinForm();
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  $("text").addEventListener("keydown", onComposerKey);
  $("text").addEventListener("input", () => {
    keepWithinLimit();
    fitComposer();
  });
  $("to").addEventListener("change", (event) => chooseRecipient(event.target.value || null));
  $("mic").addEventListener("click", () => toggle("audio"));
  $("cam").addEventListener("click", () => toggle("video"));
  $("leave").addEventListener("click", () => leave());
  $("device-retry").addEventListener("click", () => retryDevices());
  whenTrackEnds((before) => trackEnded(before));
  $("media-retry").addEventListener("click", () => retryCall());
  $("copy-link").addEventListener("click", () => copyInvite());
  window.addEventListener("resize", () => { layoutGrid(); viewLater(); });
  new ResizeObserver(() => layoutGrid()).observe($("grid"));
  window.addEventListener("pagehide", () => {
    if (state.signal) state.signal.close();
    if (state.call) state.call.close();
  });
  // For tests and debugging: a read-only look at the state.
  window.tuichat = { state };
}

init();
