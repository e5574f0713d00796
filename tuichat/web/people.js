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
    option.value = chosen.id;
    select.append(option);
  }
  select.value = chosen ? chosen.id : "";
  select.classList.toggle("gone", Boolean(chosen && chosen.gone));
  select.title = !chosen ? "Send to everyone"
    : chosen.gone ? `${chosen.name} has left: nothing is sent to them` : `Send to ${chosen.name} only`;
}

/** The composer's recipient after the people changed: gone if they left, followed if their name is back. */
export function trackRecipient() {
  const chosen = state.recipient;
  if (!chosen) return;
  if (state.participants.has(chosen.id)) { chosen.gone = false; return; }
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
  if (chosen && chosen.id === id) return;  // the departed entry picked again: it stays as it is
  const info = id ? state.participants.get(id) : null;
  state.recipient = info && info.id !== state.me ? { id: info.id, name: info.name, gone: false } : null;
  renderPeople();
}
