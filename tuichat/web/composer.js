// The composer: lines kept, the server's limit counted as it counts (code points), Enter to send, a
// line read as the terminal client reads it (chatline.js: /msg, //, /quit, /help), and sending to
// the chosen recipient, never falling back to everyone when they have left. Messages go out one at
// a time in the order sent; one the server refuses as too fast waits and goes again, as `tuichat
// bot` does, and the text stays in the box until the server has it.

import { LIMITS, TEXT_MAX } from "./config.js";
import { $, CharacterLimit, charactersWere } from "./dom.js";
import { Phase, state } from "./state.js";
import { CommandError } from "./signal.js";
import { addNotice } from "./messages.js";
import { HELP_TEXT, LineKind, nameKey, parseLine, PRIVATE_USAGE } from "./chatline.js";

/** What the page does for /quit; set by main.js, which owns leaving. */
let onQuit = () => {};

export function initComposer({ quit }) {
  onQuit = quit;
}

// The note under the box holds two things, each shown while it holds: how much a paste or typing
// past the limit left out, and that messages are waiting because they were sent too fast.
const notes = { length: "", slow: "" };

function renderNote() {
  $("composer-note").textContent = [notes.length, notes.slow].filter(Boolean).join(" ");
}

/** The box as tall as its lines (up to its CSS max-height), back to one line when empty. */
export function fitComposer() {
  const input = $("text");
  input.style.removeProperty("height");
  if (!input.value) return;
  const borders = input.offsetHeight - input.clientHeight;
  input.style.setProperty("height", `${input.scrollHeight + borders}px`);
}

let limit = null;

/** Cut the text to the server's limit (see CharacterLimit), and say how much was left out. */
export function keepWithinLimit() {
  limit ??= new CharacterLimit($("text"), TEXT_MAX);
  const leftOut = limit.check();
  notes.length = leftOut ? `A message holds at most ${TEXT_MAX} characters: ${charactersWere(leftOut)} left out.` : "";
  renderNote();
}

function clearComposer() {
  const input = $("text");
  input.value = "";
  if (limit) limit.reset();
  notes.length = "";
  renderNote();
  fitComposer();
}

/** Put a line that was not sent back in the box, unless something new is being typed there. */
function giveBack(line) {
  const input = $("text");
  if (input.value) return;
  input.value = line;
  fitComposer();
}

export function onComposerKey(event) {
  // Enter sends, Shift+Enter is a new line; Enter that ends an input method's composition is neither.
  if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.isComposing) return;
  event.preventDefault();
  sendMessage();
}

function notSent(name) {
  return `Not sent: ${name} has left. Choose someone else, or Everyone, to send it.`;
}

/** "Unknown command /foo", "Usage: …": the reason a line starting with '/' is not sent, and the way on. */
function notACommand(parsed) {
  if (parsed.problem === PRIVATE_USAGE) return `Not sent: ${parsed.problem}.`;
  return `Not sent: ${parsed.problem}. /help lists the commands; start the line with // to send it as ` +
    "text beginning with /.";
}

/** Someone in the room by name, compared as the server compares names (case, width, ...). */
function participantNamed(name) {
  const key = nameKey(name);
  return [...state.participants.values()].find((p) => nameKey(p.name) === key) || null;
}

export function sendMessage() {
  const input = $("text");
  const line = input.value;
  if (!line.trim()) return;
  const parsed = parseLine(line);
  if (parsed.kind === LineKind.QUIT) {
    clearComposer();
    onQuit();
    return;
  }
  if (parsed.kind === LineKind.HELP) {
    addNotice(HELP_TEXT);
    clearComposer();
    return;
  }
  if (parsed.kind === LineKind.INVALID) {
    addNotice(notACommand(parsed), "refused");
    input.focus();
    return;
  }
  if (!state.signal) return;
  if (state.phase === Phase.RECONNECTING) {
    addNotice("Not sent: the connection to the server dropped. Your text is kept; send it again once " +
      "the page has reconnected.", "refused");
    return;
  }
  let to = null;
  if (parsed.kind === LineKind.PRIVATE) {
    // Our own name too, as the terminal client and the bot: the server delivers it to us alone.
    const who = participantNamed(parsed.name);
    if (!who) {
      addNotice(`Not sent: nobody called "${parsed.name}" is in the room.`, "refused");
      input.focus();
      return;
    }
    to = { id: who.id, name: who.name };
  } else {
    const chosen = state.recipient;
    // Never fall back to everyone: a private message to someone gone stays in the input.
    if (chosen && chosen.gone) {
      addNotice(notSent(chosen.name), "refused");
      input.focus();
      return;
    }
    if (chosen) to = { id: chosen.id, name: chosen.name };
  }
  // Enter again on a line still waiting to go (the box keeps it until then) does not send it twice.
  if (outbox.some((item) => item.line === line)) return;
  if (outbox.length >= LIMITS.outboxMax) {
    addNotice("Not sent: too many messages are waiting to go out. Your text is kept; send it again in a moment.",
      "refused");
    return;
  }
  outbox.push({ line, text: parsed.text, to, signal: state.signal });
  pump();
}

// --- sending, one message at a time --------------------------------------------------------------

const outbox = [];  // {line (as typed), text (to send), to: {id, name} | null, signal, dropRest}
let pumping = false;

async function pump() {
  if (pumping) return;
  pumping = true;
  try {
    while (outbox.length) {
      const item = outbox[0];
      await deliver(item);
      outbox.shift();
      if (item.dropRest && outbox.length) {
        // The connection went: the rest would only fail the same way, one notice each.
        const more = outbox.length;
        outbox.length = 0;
        addNotice(`The ${more === 1 ? "message" : `${more} messages`} typed after it ` +
          `${more === 1 ? "was" : "were"} not sent either.`, "refused");
      }
    }
  } finally {
    pumping = false;
    notes.slow = "";
    renderNote();
  }
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** Send one message; told to slow down, wait and send it again (the wait doubling), up to a limit. */
async function deliver(item) {
  let wait = LIMITS.slowDownWait;
  const giveUpAt = Date.now() + LIMITS.slowDownGiveUp;
  for (;;) {
    // Only to the same person: after a server restart their id may be someone else's.
    const to = item.to && state.participants.get(item.to.id);
    if (item.to && (!to || to.name !== item.to.name)) {
      refused(item, notSent(item.to.name));
      return;
    }
    if (state.signal !== item.signal || state.phase !== Phase.IN) {
      refused(item, "Not sent: the connection to the server dropped. Send it again once the page has reconnected.");
      item.dropRest = true;
      return;
    }
    try {
      await item.signal.command({ type: "message", text: item.text, to: item.to ? item.to.id : null });
      if ($("text").value === item.line) clearComposer();  // not what was typed meanwhile
      return;
    } catch (error) {
      const slowDown = error instanceof CommandError && error.code === "rate_limited";
      if (!slowDown) {
        // They left just before it reached the server (their LEFT was still on its way to us).
        const gone = item.to && error instanceof CommandError && error.code === "unknown_participant";
        refused(item, gone ? notSent(item.to.name) : `Not sent: ${error.message}`);
        item.dropRest = !(error instanceof CommandError);  // the connection, not this message
        return;
      }
      if (Date.now() + wait > giveUpAt) {
        refused(item, "Not sent: sending too fast, and the server still refused it after waiting. " +
          "Wait a moment, then send it again.");
        return;
      }
      notes.slow = "Sending too fast: waiting a moment, then sending again…";
      renderNote();
      await sleep(wait);
      wait = Math.min(2 * wait, LIMITS.slowDownMaxWait);
    }
  }
}

function refused(item, why) {
  addNotice(why, "refused");
  giveBack(item.line);
}
