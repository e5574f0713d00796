// The invite: the room's link and the terminal command that joins it (quoted for a shell), a
// warning when the link only works on this computer, and copying the link.

import { LIMITS, ROOM } from "./config.js";
import { $, el } from "./dom.js";
import { state } from "./state.js";

function terminalAddress(base) {
  const url = new URL(base);
  const prefix = url.pathname.replace(/\/+$/, "");
  if (prefix) return `${url.protocol === "https:" ? "wss" : "ws"}://${url.host}${prefix}/ws`;
  if (url.protocol === "https:") return `wss://${url.host}`;
  return url.port ? url.host : `${url.host}:80`;
}

/** localhost, 127.x.y.z or ::1: an address that means "this computer" wherever it is opened. */
function isLoopback(hostname) {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\./.test(host);
}

/** As Python's shlex.quote (the terminal client's invite): safe to paste into a POSIX shell or zsh. */
function shellQuote(word) {
  if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'"'"'`)}'`;
}

export function renderInvite() {
  const link = `${state.publicUrl.replace(/\/+$/, "")}/r/${encodeURIComponent(ROOM)}`;
  $("invite-link").textContent = link;
  $("invite-link").href = link;
  $("invite-local").hidden = !isLoopback(new URL(link).hostname);
  const endOfOptions = ROOM.startsWith("-") ? "-- " : "";
  $("invite-command").textContent =
    `tuichat connect ${shellQuote(terminalAddress(state.publicUrl))} THEIR_NAME ${endOfOptions}${shellQuote(ROOM)}`;
}

/**
 * Copy ``text``: the Clipboard API where the browser offers it (https and localhost only), else
 * the older copy command on a selected text area, which works on plain http:// too.
 */
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Refused (no permission): the older way below may still work.
    }
  }
  const returnTo = document.activeElement;
  const area = el("textarea", "offscreen");
  area.value = text;
  area.readOnly = true;
  area.setAttribute("aria-hidden", "true");
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  area.remove();
  if (returnTo && returnTo.focus) returnTo.focus();
  return copied;
}

let copiedTimer = null;

export async function copyInvite() {
  const button = $("copy-link");
  const copied = await copyText($("invite-link").href);
  button.textContent = copied ? "Copied" : "Copy failed";
  clearTimeout(copiedTimer);
  copiedTimer = setTimeout(() => { button.textContent = "Copy link"; }, LIMITS.copiedShown);
}
