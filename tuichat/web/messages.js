// The message log: chat messages (once each, history included) and the page's own notices, kept to
// a bounded number of entries and following the newest unless the person scrolled up to read.

import { LIMITS } from "./config.js";
import { $, el } from "./dom.js";
import { state } from "./state.js";
import { linkify } from "./links.js";

// The log follows its newest entry unless the person scrolled up to read (a hidden log, or
// history arriving before the page is laid out, must not stop it following).
let logFollows = true;

let logTop = 0;

$("messages").addEventListener("scroll", () => {
  // Only a move up (the person reading back) stops following; reaching the end starts it again.
  // Our own scrolls go down, and entries appended meanwhile must not read as the person leaving.
  const log = $("messages");
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  if (atEnd) logFollows = true;
  else if (log.scrollTop < logTop) logFollows = false;
  logTop = log.scrollTop;
});

export function followLog() {
  const log = $("messages");
  if (logFollows) log.scrollTop = log.scrollHeight;
}

// The panel settles its height after the call view is laid out (and on every window resize).
new ResizeObserver(followLog).observe($("messages"));

function appendEntry(entry) {
  const log = $("messages");
  log.append(entry);
  while (log.childElementCount > LIMITS.messagesKept) log.firstElementChild.remove();
  followLog();
}

function formatTime(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function addMessage(chat) {
  const key = `${chat.ts}:${chat.id}`;
  if (state.shown.has(key)) return;
  state.shown.add(key);
  const entry = el("li", chat.to ? "message private" : "message");
  const head = el("div", "message-head");
  const from = el("span", "message-from", chat.from.name);
  from.title = chat.from.name;  // the whole name, when a long one ends in an ellipsis
  head.append(from);
  if (chat.to) {
    const other = state.participants.get(chat.to);
    const to = chat.to === state.me ? "you" : other ? other.name : "someone who left";
    head.append(el("span", "message-private", `private to ${to}`));
  }
  head.append(el("time", "message-time", formatTime(chat.ts)));
  const body = el("div", "message-text");
  body.append(linkify(chat.text));
  entry.append(head, body);
  appendEntry(entry);
}

/** A line from the page itself; kind "refused" marks something the person tried that was not done. */
export function addNotice(text, kind) {
  appendEntry(el("li", kind ? `notice ${kind}` : "notice", text));
}
