/**
 * The pages a person sees while signing in: the consent page (who signs in, which client asks,
 * where the tokens go, and the tools that identity will see) and refusals that say why. Every
 * string may come from a client or a provider, so all of it is escaped; the pages run no script
 * and may not be framed.
 */
import type { ConsentDescription } from "@cloudflare/workers-oauth-provider";

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE =
  "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}" +
  "code,li{overflow-wrap:anywhere}.warn{background:#fff3cd;padding:.5rem}button{font-size:1rem;margin-right:.5rem}";

/** No script, no framing, nothing loaded from elsewhere; the form posts to this origin. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title><style>${STYLE}</style><body>${body}</body></html>`;
}

/** What the consent page shows. */
export interface ConsentFacts {
  details: ConsentDescription;
  email: string;
  agent: string;
  resource: string;
  tools: string[];
  /** What the grant will allow: `list_tools`, `call_tools`. */
  scopes: string[];
  handle: string;
}

/** The consent page: Allow or Deny, posting only the library's browser-bound handle. */
export function consentPage(facts: ConsentFacts): string {
  const { details } = facts;
  const origin = details.clientDomain
    ? `Published by <strong>${escapeHtml(details.clientDomain)}</strong>.`
    : "This app registered itself: its name is not verified.";
  const tools = facts.tools.length
    ? `<ul id="tools">${facts.tools.map((t) => `<li><code>${escapeHtml(t)}</code></li>`).join("")}</ul>`
    : `<p id="tools">No tools: the policy grants this identity none here.</p>`;
  return page(
    `Allow ${details.clientName}?`,
    `<h1>Allow <span id="client">${escapeHtml(details.clientName)}</span> to use MCPCP as you?</h1>
<p>Signed in as <strong id="email">${escapeHtml(facts.email)}</strong>, acting as agent <strong id="agent">${escapeHtml(facts.agent)}</strong>.</p>
<p>${origin} Access will be sent to <strong id="redirect-host">${escapeHtml(details.redirectHost)}</strong>.</p>
${details.redirectIsLoopback ? '<p class="warn">This sends access to an app on your computer. Continue only if you just started signing in from it.</p>' : ""}
<p>Scopes <span id="scopes">${facts.scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(", ")}</span> at <code id="resource">${escapeHtml(facts.resource)}</code>, where it will see these tools:</p>
${tools}
<form method="post" action="/authorize">
<input type="hidden" name="handle" value="${escapeHtml(facts.handle)}">
<button name="decision" value="approve" id="approve">Allow</button><button name="decision" value="deny" id="deny">Deny</button>
</form>`,
  );
}

/** A refusal shown to the person: what happened and what to do about it. */
export function refusalPage(title: string, message: string): string {
  return page(
    title,
    `<h1 id="title">${escapeHtml(title)}</h1><p id="message">${escapeHtml(message)}</p>`,
  );
}

/** An HTML answer with the pages' headers (`extra`: the library's cookies and framing headers). */
export function htmlResponse(html: string, status: number, extra?: Headers): Response {
  const headers = new Headers(extra);
  headers.set("content-type", "text/html; charset=utf-8");
  headers.set("content-security-policy", PAGE_CSP);
  headers.set("x-frame-options", "DENY");
  headers.set("cache-control", "no-store");
  headers.set("referrer-policy", "no-referrer");
  return new Response(html, { status, headers });
}
