/**
 * The battle page's HTML: one static document for the list (/battles) and for a battle
 * (/battles/:id). It holds no data and no inline script; its script (page/main.ts, served from
 * /battles/assets/) reads the inspection token from the URL fragment and calls the JSON API.
 *
 * The Content-Security-Policy (common/page-document.ts) is the second wall behind DOMPurify:
 * markdown images cannot call out (only `data:` and this origin), and Trusted Types confine HTML
 * parsing to DOMPurify's policy.
 */
import { definePage } from "../../../common/page-document.ts";

const battlePage = definePage({
  title: "Battles · MCPCP",
  assets: "/battles/assets",
  header: `<a href="/battles" class="brand">MCPCP battles</a><span id="session"></span>`,
  noscript: "This page needs JavaScript to load the battles.",
  images: "'self' data:",
  trustedTypes: "dompurify",
});

/** The page, with headers that keep it and anything rendered in it contained. */
export function pageResponse(): Response {
  return battlePage.page();
}

/** A static file of the page from the assets binding (absent in tests that do not build them). */
export async function assetResponse(assets: Fetcher | undefined, request: Request) {
  if (!assets) return Response.json({ error: "not_found" }, { status: 404 });
  return battlePage.contain(await assets.fetch(request));
}
