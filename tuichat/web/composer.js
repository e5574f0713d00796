// The composer: lines kept, the server's limit counted as it counts (code points), Enter to send,
// and sending to the chosen recipient, never falling back to everyone when they have left.

import { TEXT_MAX } from "./config.js";
import { $ } from "./dom.js";
import { Phase, state } from "./state.js";
import { CommandError } from "./signal.js";
import { addNotice } from "./messages.js";

/** The box as tall as its lines (up to its CSS max-height), back to one line when empty. */
export function fitComposer() {
  const input = $("text");
  input.style.removeProperty("height");
  if (!input.value) return;
  const borders = input.offsetHeight - input.clientHeight;
  input.style.setProperty("height", `${input.scrollHeight + borders}px`);
}

/**
 * Cut the text to the server's limit, counted in characters (code points) as the server counts
 * them, not in UTF-16 units as maxlength would (which halves the limit for emoji). What goes is
 * what just came in (the characters before the caret), and the note says how much.
 */
export function keepWithinLimit() {
  const input = $("text");
  const note = $("composer-note");
  const chars = [...input.value];
  const excess = chars.length - TEXT_MAX;
  if (excess <= 0) {
    note.textContent = "";
    return;
  }
  const caret = [...input.value.slice(0, input.selectionEnd)].length;
  const from = Math.max(0, caret - excess);
  const kept = chars.slice(0, from).concat(chars.slice(caret)).slice(0, TEXT_MAX);
  input.value = kept.join("");
  const at = kept.slice(0, from).join("").length;
  input.setSelectionRange(at, at);
  note.textContent = `A message holds at most ${TEXT_MAX} characters: ${excess} ` +
    `${excess === 1 ? "character was" : "characters were"} left out.`;
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

export async function sendMessage() {
  const input = $("text");
  const text = input.value;
  if (!text.trim() || !state.signal) return;
  if (state.phase === Phase.RECONNECTING) {
    addNotice("Not sent: the connection to the server dropped. Your text is kept; send it again once " +
      "the page has reconnected.", "refused");
    return;
  }
  const chosen = state.recipient;
  // Never fall back to everyone: a private message to someone gone stays in the input.
  if (chosen && chosen.gone) {
    addNotice(notSent(chosen.name), "refused");
    input.focus();
    return;
  }
  try {
    await state.signal.command({ type: "message", text, to: chosen ? chosen.id : null });
    if (input.value === text) {  // not what was typed meanwhile
      input.value = "";
      $("composer-note").textContent = "";
      fitComposer();
    }
  } catch (error) {
    // They left just before it reached the server (their LEFT was still on its way to us).
    const gone = chosen && error instanceof CommandError && error.code === "unknown_participant";
    addNotice(gone ? notSent(chosen.name) : `Not sent: ${error.message}`, "refused");
  }
}
