// Web addresses in chat text made into links, and nothing else: the text stays text nodes, and a
// link's target is built from the address alone (http and https only).

import { el } from "./dom.js";

/** http(s) addresses in chat; what ends one is decided by trimLinkEnd. */
const LINK_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;

const CLOSING = { ")": "(", "]": "[", "}": "{" };

/** An address without what usually follows it in a sentence: a full stop, a comma, or the ")"
 *  closing a parenthesis opened before the address (one opened inside it stays: ``…/p(1)``). */
function trimLinkEnd(candidate) {
  const count = (text, char) => text.split(char).length - 1;
  let end = candidate.length;
  while (end > 0) {
    const last = candidate[end - 1];
    const kept = candidate.slice(0, end);
    if (".,:;!?'*".includes(last)) end -= 1;
    else if (CLOSING[last] && count(kept, last) > count(kept, CLOSING[last])) end -= 1;
    else break;
  }
  return candidate.slice(0, end);
}

/** The address as the link's target, or null if it is no http(s) URL with a host. */
function linkTarget(candidate) {
  try {
    const url = new URL(candidate);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname ? url.href : null;
  } catch {
    return null;
  }
}

/** Chat text as text nodes, with each web address an anchor made from the address alone. */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let done = 0;
  for (const match of text.matchAll(LINK_PATTERN)) {
    const candidate = trimLinkEnd(match[0]);
    const target = linkTarget(candidate);
    if (!target) continue;
    if (match.index > done) fragment.append(text.slice(done, match.index));
    const link = el("a", "message-link", candidate);
    link.href = target;
    link.rel = "noopener noreferrer nofollow";
    link.target = "_blank";
    fragment.append(link);
    done = match.index + candidate.length;
  }
  if (done < text.length) fragment.append(text.slice(done));
  return fragment;
}
