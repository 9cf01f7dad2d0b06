/**
 * The battle page's DOM helpers: the shared kit (common/page/dom.ts: text goes in as text nodes)
 * and the link to a battle. The only HTML this page parses is sanitised markdown (markdown.ts).
 */
export { button, h, time } from "../../../common/page/dom.ts";

/** The link to one battle's page. */
export function battleHref(id: string): string {
  return `/battles/${encodeURIComponent(id)}`;
}
