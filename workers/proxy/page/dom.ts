/**
 * The admin page's DOM helpers: the shared kit (common/page/dom.ts: every value from the API goes
 * in as a text node or an attribute value) and what only this page shows. The page's CSP enforces
 * it as well: Trusted Types with no policy at all, so an `innerHTML` assignment would throw.
 */
import { button, type Child, h, time } from "../../../common/page/dom.ts";

export { button, h, time };

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
