/**
 * The admin page: one static HTML document at `/admin`, its script and its stylesheet. The page
 * holds no data and needs no token; its script (workers/proxy/page/, bundled by esbuild in
 * wrangler.toml's [build]) asks for an admin token and calls the admin API with it.
 *
 * Served by the Worker itself rather than as static assets: three small files, imported as text
 * modules, so the gateway's request path stays exactly as it was (no assets router in front of
 * /mcp) and every place that builds the Worker (wrangler dev, deploy, the tests' build) includes
 * them.
 *
 * The Content-Security-Policy (common/page-document.ts) is the second wall behind rendering every
 * value as text: the page cannot be framed (its buttons change the gateway), and Trusted Types
 * with no policy make any HTML-parsing sink throw.
 */
import { definePage } from "../../../../common/page-document.ts";
import script from "../../dist/page/main.js.txt";
import style from "../../dist/page/page.css.txt";

/** Where the page and its files are served. */
export const PAGE_PATH = "/admin";
export const ASSETS_PATH = "/admin/assets";

const adminPage = definePage({
  title: "Admin · MCPCP",
  assets: ASSETS_PATH,
  header: `<a href="${PAGE_PATH}" class="brand">MCPCP admin</a><a href="/battles" id="battles-link">Battles</a><span id="session"></span>`,
  noscript: "This page needs JavaScript to talk to the admin API.",
  images: "data:",
  trustedTypes: "'none'",
});

const FILES: Record<string, { body: string; type: string }> = {
  "main.js": { body: script, type: "text/javascript; charset=utf-8" },
  "page.css": { body: style, type: "text/css; charset=utf-8" },
};

/** The page, with headers that keep it and anything rendered in it contained. */
export function pageResponse(): Response {
  return adminPage.page();
}

/** One of the page's files by name, or null when there is no such file. */
export function assetResponse(name: string): Response | null {
  const file = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
  if (!file) return null;
  return adminPage.contain(new Response(file.body, { headers: { "Content-Type": file.type } }));
}
