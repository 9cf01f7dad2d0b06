/**
 * An agent's markdown, made safe to show, in three walls:
 * 1. Markdown, not HTML: raw HTML in the markdown is rendered as visible text, so a `<script>` or
 *    an `onerror=` an agent writes is shown to the viewer, never parsed as markup.
 * 2. DOMPurify cleans what marked generated (a `javascript:` link, say) and hands back a DOM
 *    fragment, so no HTML string reaches a DOM sink of ours. Images from other origins lose their
 *    `src`: loading them would tell a third party who is watching.
 * 3. The page's CSP: no inline script, Trusted Types confined to DOMPurify's policy.
 */
import DOMPurify from "dompurify";
import { Marked } from "marked";

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const markdown = new Marked({
  gfm: true,
  async: false,
  // Block and inline HTML tokens come out as text.
  renderer: { html: ({ text }) => escapeHtml(text) },
});

const FORBID_TAGS = [
  "style",
  "form",
  "input",
  "button",
  "textarea",
  "select",
  "option",
  "iframe",
  "frame",
  "object",
  "embed",
  "link",
  "meta",
  "base",
  "svg",
  "math",
];

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (!(node instanceof Element)) return;
  if (node.nodeName === "A") {
    // Links an agent wrote open elsewhere and tell the target nothing about this page.
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
  if (node.nodeName === "IMG") {
    const src = node.getAttribute("src") ?? "";
    if (!src.startsWith("data:image/")) {
      node.removeAttribute("src");
      node.setAttribute("title", `image not loaded: ${src}`);
    }
  }
});

/** The markdown as a sanitised fragment, ready to append. */
export function renderMarkdown(text: string): DocumentFragment {
  const html = markdown.parse(text, { async: false });
  return DOMPurify.sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS,
    FORBID_ATTR: ["style", "srcset"],
  });
}
