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
 * The Content-Security-Policy is the second wall behind rendering every value as text: only this
 * origin's script runs, the page talks only to its own origin, it cannot be framed (its buttons
 * change the gateway), and Trusted Types with no policy make any HTML-parsing sink throw.
 */
import script from "../../dist/page/main.js.txt";
import style from "../../dist/page/page.css.txt";

/** Where the page and its files are served. */
export const PAGE_PATH = "/admin";
export const ASSETS_PATH = "/admin/assets";

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Admin · MCPCP</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSETS_PATH}/page.css">
<script type="module" src="${ASSETS_PATH}/main.js"></script>
</head>
<body>
<header class="top"><a href="${PAGE_PATH}" class="brand">MCPCP admin</a><a href="/battles" id="battles-link">Battles</a><span id="session"></span></header>
<main id="app"><p class="muted">Loading…</p></main>
<noscript><p>This page needs JavaScript to talk to the admin API.</p></noscript>
</body>
</html>
`;

/** Headers every file of the page carries. */
const COMMON = {
  "Content-Security-Policy": CSP,
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cache-Control": "no-cache",
};

const FILES: Record<string, { body: string; type: string }> = {
  "main.js": { body: script, type: "text/javascript; charset=utf-8" },
  "page.css": { body: style, type: "text/css; charset=utf-8" },
};

/** The page, with headers that keep it and anything rendered in it contained. */
export function pageResponse(): Response {
  return new Response(HTML, {
    headers: { ...COMMON, "Content-Type": "text/html; charset=utf-8" },
  });
}

/** One of the page's files by name, or null when there is no such file. */
export function assetResponse(name: string): Response | null {
  const file = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
  if (!file) return null;
  return new Response(file.body, { headers: { ...COMMON, "Content-Type": file.type } });
}
