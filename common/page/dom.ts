/**
 * Building a page's DOM from data without ever parsing a string as HTML: every value goes in as a
 * text node or an attribute value. Both pages' CSPs enforce it as well, with Trusted Types: the
 * admin page allows no policy at all, the battle page only DOMPurify's (its markdown).
 */

export type Child = Node | string | number | null | undefined | false;

/** `<tag attr=…>children</tag>`; strings become text nodes, falsy children are skipped. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined) element.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "number" ? String(child) : child);
  }
  return element;
}

/** A button that runs `action` when clicked. */
export function button(
  label: string,
  action: () => void,
  attributes: Record<string, string | undefined> = {},
): HTMLButtonElement {
  const element = h("button", { type: "button", ...attributes }, label);
  element.addEventListener("click", action);
  return element;
}

/** A local, readable time for an ISO timestamp, with the exact value in a `<time>`. */
export function time(iso: string): HTMLTimeElement {
  const date = new Date(iso);
  const shown = Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  return h("time", { datetime: iso, title: iso }, shown);
}
