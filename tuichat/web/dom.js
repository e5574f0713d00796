// The DOM helpers every part of the page uses. Text from other people only ever goes in through
// `el`'s textContent (or as text nodes), never parsed as HTML.

export const $ = (id) => document.getElementById(id);

/** An element with a class and text; text always goes in as text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Keeps a text field to `max` characters counted as the server counts them (code points), not in
 * UTF-16 units as maxlength would (which halves the limit for emoji). What goes is what just came in
 * (the characters before the caret). `check()` (on each input event) answers how many characters
 * were left out since the field was last under the limit: typing on at the limit adds up, rather
 * than saying "1" each time.
 */
export class CharacterLimit {
  constructor(input, max) {
    this.input = input;
    this.max = max;
    this.reset();
  }

  reset() {
    this.kept = null;  // the value the last cut left
    this.leftOut = 0;
  }

  check() {
    const input = this.input;
    const chars = [...input.value];
    const excess = chars.length - this.max;
    if (excess <= 0) {
      if (excess < 0) this.reset();
      return this.leftOut;
    }
    const caret = [...input.value.slice(0, input.selectionEnd)].length;
    const from = Math.max(0, caret - excess);
    const kept = chars.slice(0, from).concat(chars.slice(caret)).slice(0, this.max);
    input.value = kept.join("");
    const at = kept.slice(0, from).join("").length;
    input.setSelectionRange(at, at);
    // Nothing of this input stayed and the rest is as the last cut left it: the same overflow going on.
    this.leftOut = (input.value === this.kept ? this.leftOut : 0) + excess;
    this.kept = input.value;
    return this.leftOut;
  }
}

/** "1 character was", "5 characters were". */
export function charactersWere(count) {
  return `${count} ${count === 1 ? "character was" : "characters were"}`;
}

/** A wait in seconds for people: "0.5", "2". */
export const seconds = (ms) => (ms < 1000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000)));
