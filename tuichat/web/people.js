// The people panel and whom the composer sends to: the list (each other person a button that starts
// a private message), the "Send to" choice, and keeping that choice across someone leaving and
// coming back under the same name. Names go in as text.

import { $, el } from "./dom.js";
import { Phase, state } from "./state.js";

export function badges(info) {
  const out = [];
  const stream = info.stream;
  if (!stream || (!stream.audio && !stream.video)) out.push("no media");
  else {
    // "no mic" (nothing to send) is not "mic off" (muted): the first cannot be asked to unmute.
    if (!stream.audio) out.push("no mic");
    else if (stream.audio_muted) out.push("mic off");
    if (!stream.video) out.push("no camera");
    else if (stream.video_muted) out.push("camera off");
  }
  return out;
}

/** The menu's value for a chosen recipient who has left (participant ids are "p1", "p2", ...). */
const GONE_VALUE = "(left)";

export function renderPeople() {
  const list = $("people");
  const select = $("to");
  const chosen = state.recipient;
  const stale = state.phase === Phase.RECONNECTING;
  list.classList.toggle("stale", stale);
  $("people-stale").hidden = !stale;
  list.replaceChildren();
  // We come first, then the others in the order they joined (as in the terminal client).
  const people = [...state.participants.values()].sort((a, b) => (b.id === state.me) - (a.id === state.me));
  for (const info of people) {
    const me = info.id === state.me;
    const item = el("li", me ? "person me" : "person");
    item.dataset.id = info.id;
    // Someone else is a button (Tab reaches it, Enter starts a private message); we are not.
    const body = el(me ? "span" : "button", "person-action");
    body.append(el("span", "person-name", info.name));
    if (me) body.append(el("span", "you", "you"));
    for (const badge of badges(info)) body.append(el("span", "badge", badge));
    if (!me) {
      body.type = "button";
      body.title = `Send ${info.name} a private message`;
      body.addEventListener("click", () => { chooseRecipient(info.id); $("text").focus(); });
    }
    item.append(body);
    list.append(item);
  }
  $("people-count").textContent = String(people.length);
  select.replaceChildren(el("option", "", "Everyone"));
  select.firstChild.value = "";
  for (const info of people) {
    if (info.id === state.me) continue;
    const option = el("option", "", `${info.name} (private)`);
    option.value = info.id;
    select.append(option);
  }
  if (chosen && chosen.gone) {
    const option = el("option", "gone", `${chosen.name} (left)`);
    option.value = GONE_VALUE;  // not their id: after a restart it may be someone else's option
    select.append(option);
  }
  select.value = !chosen ? "" : chosen.gone ? GONE_VALUE : chosen.id;
  select.classList.toggle("gone", Boolean(chosen && chosen.gone));
  select.title = !chosen ? "Send to everyone"
    : chosen.gone ? `${chosen.name} has left: nothing is sent to them` : `Send to ${chosen.name} only`;
}

/**
 * The composer's recipient after the people changed: the same person by id AND name (a server that
 * restarted hands out p1, p2, ... again, so an id alone may now be someone else), followed if their
 * name is back under a new id, else gone: "dan (left)", and nothing is sent to anyone.
 */
export function trackRecipient() {
  const chosen = state.recipient;
  if (!chosen) return;
  const same = state.participants.get(chosen.id);
  if (same && same.name === chosen.name && same.id !== state.me) { chosen.gone = false; return; }
  const back = [...state.participants.values()].find((p) => p.name === chosen.name && p.id !== state.me);
  if (back) {
    chosen.id = back.id;
    chosen.gone = false;
  } else {
    chosen.gone = true;
  }
}

/** Send to one participant (by id), or to everyone with null; only ever on the person's own choice. */
export function chooseRecipient(id) {
  const chosen = state.recipient;
  if (chosen && chosen.gone && id === GONE_VALUE) return;  // the departed entry picked again: it stays
  if (chosen && !chosen.gone && chosen.id === id) return;
  const info = id ? state.participants.get(id) : null;
  state.recipient = info && info.id !== state.me ? { id: info.id, name: info.name, gone: false } : null;
  renderPeople();
}
