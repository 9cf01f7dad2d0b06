/**
 * A browser page's document as a Worker serves it: one static HTML file that holds no data and no
 * inline script or style, its own script and stylesheet, and the headers that keep it and
 * anything rendered in it contained. The admin page (workers/proxy/src/admin/page.ts) and the
 * battle page (workers/mcp1/src/page.ts) are both made here, so they share one set of walls.
 *
 * The Content-Security-Policy is the second wall behind each page's rendering: only this origin's
 * script runs, the page talks only to its own origin, it cannot be framed, and Trusted Types
 * confine HTML parsing to the policies a page names (none at all: every HTML sink throws).
 */

/** What a page's document says: the parts in which the two pages differ. */
export interface PageDocument {
  /** The `<title>`. */
  title: string;
  /** Where `main.js` and `page.css` are served. */
  assets: string;
  /** The inside of `<header class="top">`: static markup written here, never data. */
  header: string;
  /** What `<noscript>` says. */
  noscript: string;
  /** The CSP's `img-src` sources. */
  images: string;
  /** The Trusted Types policies the script may create (`'none'`: none). */
  trustedTypes: string;
}

/** A page's responses: the document, and any file of it given the page's headers. */
export interface PageResponses {
  page(): Response;
  /** `response` (a script, a stylesheet) with the page's headers set over its own. */
  contain(response: Response): Response;
}

export function definePage(document: PageDocument): PageResponses {
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${document.images}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    `trusted-types ${document.trustedTypes}`,
  ].join("; ");
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${document.title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${document.assets}/page.css">
<script type="module" src="${document.assets}/main.js"></script>
</head>
<body>
<header class="top">${document.header}</header>
<main id="app"><p class="muted">Loading…</p></main>
<noscript><p>${document.noscript}</p></noscript>
</body>
</html>
`;
  const contain = (response: Response): Response => {
    const headers = new Headers(response.headers);
    headers.set("Content-Security-Policy", csp);
    headers.set("Referrer-Policy", "no-referrer");
    headers.set("X-Content-Type-Options", "nosniff");
    // frame-ancestors says it to browsers that read CSP; this to those that do not.
    headers.set("X-Frame-Options", "DENY");
    headers.set("Cross-Origin-Opener-Policy", "same-origin");
    headers.set("Cache-Control", "no-cache");
    return new Response(response.body, { status: response.status, headers });
  };
  return {
    page: () =>
      contain(new Response(html, { headers: { "Content-Type": "text/html; charset=utf-8" } })),
    contain,
  };
}
