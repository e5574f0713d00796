// The two DOM helpers every part of the page uses. Text from other people only ever goes in
// through `el`'s textContent (or as text nodes), never parsed as HTML.

export const $ = (id) => document.getElementById(id);

/** An element with a class and text; text always goes in as text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
