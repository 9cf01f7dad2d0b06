/**
 * The battle page's HTML: one static document for the list (/battles) and for a battle
 * (/battles/:id). It holds no data and no inline script; its script (page/main.ts, served from
 * /battles/assets/) reads the inspection token from the URL fragment and calls the JSON API.
 *
 * The Content-Security-Policy is the second wall behind DOMPurify: only our own script runs, the
 * page talks only to its own origin, markdown images cannot call out, and Trusted Types confine
 * HTML parsing to DOMPurify's policy.
 */

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types dompurify",
].join("; ");

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Battles · MCPCP</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/battles/assets/page.css">
<script type="module" src="/battles/assets/main.js"></script>
</head>
<body>
<header class="top"><a href="/battles" class="brand">MCPCP battles</a><span id="session"></span></header>
<main id="app"><p class="muted">Loading…</p></main>
<noscript><p>This page needs JavaScript to load the battles.</p></noscript>
</body>
</html>
`;

/** The page, with headers that keep it and anything rendered in it contained. */
export function pageResponse(): Response {
  return new Response(HTML, {
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": CSP,
      "Referrer-Policy": "no-referrer",
      "X-Content-Type-Options": "nosniff",
      "Cache-Control": "no-cache",
    },
  });
}

/** A static file of the page from the assets binding (absent in tests that do not build them). */
export async function assetResponse(assets: Fetcher | undefined, request: Request) {
  if (!assets) return Response.json({ error: "not_found" }, { status: 404 });
  const response = await assets.fetch(request);
  const headers = new Headers(response.headers);
  headers.set("X-Content-Type-Options", "nosniff");
  headers.set("Cache-Control", "no-cache");
  return new Response(response.body, { status: response.status, headers });
}
