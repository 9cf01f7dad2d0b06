/**
 * Building the page's DOM from data without ever parsing a string as HTML: every value from the
 * API goes in as a text node or an attribute value. The page's CSP enforces it as well: Trusted
 * Types with no policy at all, so an `innerHTML` assignment would throw.
 */

type Child = Node | string | number | null | undefined | false;

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

/** A Unix time in seconds, shown as `time` shows an ISO one. */
export function unixTime(seconds: number): HTMLTimeElement {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? h("time", {}, String(seconds)) : time(date.toISOString());
}

/** A list of names as `<code>` items, or a muted word when there are none. */
export function names(items: readonly string[], empty = "none"): HTMLElement {
  if (items.length === 0) return h("span", { class: "muted" }, empty);
  return h("ul", { class: "names" }, ...items.map((item) => h("li", {}, h("code", {}, item))));
}

/** A message in a status line: `role=alert` for problems, so assistive tech reads them at once. */
export function message(kind: "ok" | "error" | "info", text: string, ...more: Child[]) {
  const role = kind === "error" ? "alert" : "status";
  return h("p", { class: `message ${kind}`, role }, text, ...more);
}

/** What went wrong, as a sentence. */
export function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The Unix second a `datetime-local` input's value names, or undefined when it is empty. */
export function secondsOf(input: HTMLInputElement): number | undefined {
  if (!input.value) return undefined;
  const ms = new Date(input.value).getTime();
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}
