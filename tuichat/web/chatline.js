// What a typed line means, read as the terminal client and the bot read it (the same rules as
// tuichat/client/chatline.py, so a line copied from one works in the other): `/msg NAME TEXT` is a
// private message (a name with spaces in double quotes), `//TEXT` sends `/TEXT`, `/quit` and `/exit`
// leave, `/help` lists these, and any other line starting with '/' is not sent. Names are matched
// as the server compares them (tuichat/protocol/names.py name_key).

export const LineKind = Object.freeze({
  TEXT: "text",        // to the recipient chosen in the menu
  PRIVATE: "private",  // /msg NAME TEXT
  QUIT: "quit",        // /quit or /exit
  HELP: "help",        // /help
  INVALID: "invalid",  // a /msg without NAME and TEXT, or an unknown /command: not sent
});

export const PRIVATE_USAGE = 'usage: /msg NAME TEXT (quote a name with spaces: /msg "Ann Lee" hi)';
const QUIT_COMMANDS = ["/quit", "/exit"];

/** What the page's /help says: the commands it reads, and the keys of the message box. */
export const HELP_TEXT = "Commands: /msg NAME TEXT sends TEXT to NAME alone (a name with spaces in quotes: " +
  '/msg "Ann Lee" hi); //TEXT sends /TEXT; /quit or /exit leaves the room; /help shows this. Enter sends, ' +
  "Shift+Enter starts a new line; the menu above the box, or a name in the people list, sends privately.";

/** Python's str.partition(sep): [before, after], after "" when sep is not there. */
function partition(text, sep) {
  const at = text.indexOf(sep);
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + sep.length)];
}

/** Python's str.split(None, 1): [first word, the rest after the whitespace that ends it]. */
function splitWord(text) {
  const match = /\s/u.exec(text);
  return match ? [text.slice(0, match.index), text.slice(match.index).replace(/^\s+/u, "")] : [text, ""];
}

/** `"Ann Lee" hi there` → ["Ann Lee", "hi there"]; `bob hi` → ["bob", "hi"]; any whitespace ends a name. */
function splitName(rest) {
  const trimmed = rest.trim();
  if (trimmed.startsWith('"')) {
    const [name, body] = partition(trimmed.slice(1), '"');
    return [name, body.trim()];
  }
  const [name, body] = splitWord(trimmed);
  return [name, body.trim()];
}

/** {kind, text, name, problem}: text is what to send (TEXT: the line as typed). */
export function parseLine(line) {
  const stripped = line.trim();
  if (stripped.startsWith("//")) return { kind: LineKind.TEXT, text: stripped.slice(1) };
  if (!stripped.startsWith("/")) return { kind: LineKind.TEXT, text: line };
  const [typed, rest] = splitWord(stripped);  // any whitespace ends the command: "/quit⏎bye"
  const command = typed.toLowerCase();         // /MSG is /msg
  if (QUIT_COMMANDS.includes(command)) return { kind: LineKind.QUIT };
  if (command === "/help") return { kind: LineKind.HELP };
  if (command === "/msg") {
    const [name, body] = splitName(rest);
    if (!name || !body) return { kind: LineKind.INVALID, problem: PRIVATE_USAGE };
    return { kind: LineKind.PRIVATE, text: body, name };
  }
  return { kind: LineKind.INVALID, problem: `unknown command ${typed}` };
}

// Emoji variation selectors and skin tones, which the server ignores when it compares names.
const NOT_IN_KEYS = /[\uFE00-\uFE0F\u{E0100}-\u{E01EF}\u{1F3FB}-\u{1F3FF}]/gu;

/**
 * What two names must not share in a room, as the server's name_key: compatibility forms folded,
 * case folded (upper then lower case stands for Python's casefold: "ß" is "ss"), variation
 * selectors and skin tones dropped.
 */
export function nameKey(name) {
  const folded = name.normalize("NFKC").toUpperCase().toLowerCase();
  return folded.normalize("NFKC").replace(NOT_IN_KEYS, "");
}
