/**
 * A person at a browser, by script: follows redirects by hand, keeps each host's cookies, and
 * fills in the upstream provider's sign-in and consent forms (oidc-provider's development forms)
 * and the gateway's consent page. Runs in Node and in workerd: `send` decides how a URL is
 * fetched (the workerd tests hand the gateway's own URLs to the Worker under test).
 */

export type Send = (request: Request) => Promise<Response>;

/** One page the browser stopped at: the response and its body. */
export interface Stop {
  url: string;
  response: Response;
  body: string;
}

export class ScriptedBrowser {
  private readonly jar = new Map<string, Map<string, string>>();
  private readonly send: Send;
  constructor(send: Send = (request) => fetch(request)) {
    this.send = send;
  }

  /** Fetches `url`, following redirects until `until(url)` or a page that is not a redirect. */
  async go(
    url: string,
    init: RequestInit = {},
    until: (url: string) => boolean = () => false,
  ): Promise<Stop> {
    let current = url;
    let request = this.request(current, init);
    for (let hop = 0; hop < 20; hop++) {
      const response = await this.send(request);
      this.keep(current, response);
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || !location) {
        return { url: current, response, body: await response.text() };
      }
      await response.body?.cancel();
      current = new URL(location, current).href;
      if (until(current)) return { url: current, response, body: "" };
      request = this.request(current, {});
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** Submits the page's first form whose hidden/filled fields are `fields` plus its own hidden ones. */
  async submit(stop: Stop, fields: Record<string, string>, until?: (url: string) => boolean) {
    const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(stop.body);
    if (!form) throw new Error(`no form at ${stop.url}: ${stop.body.slice(0, 300)}`);
    const values = new URLSearchParams();
    for (const input of form[2]?.matchAll(/<input[^>]*type="hidden"[^>]*>/gi) ?? []) {
      const name = /name="([^"]*)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? "";
      if (name) values.set(name, unescapeHtml(value));
    }
    for (const [name, value] of Object.entries(fields)) values.set(name, value);
    const action = new URL(unescapeHtml(form[1] ?? ""), stop.url).href;
    return this.go(
      action,
      {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: values.toString(),
      },
      until,
    );
  }

  private request(url: string, init: RequestInit): Request {
    const headers = new Headers(init.headers);
    const cookies = this.jar.get(new URL(url).host);
    if (cookies?.size) {
      headers.set("cookie", [...cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    return new Request(url, { ...init, headers, redirect: "manual" });
  }

  private keep(url: string, response: Response): void {
    const host = new URL(url).host;
    const cookies = this.jar.get(host) ?? new Map<string, string>();
    for (const line of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = line.split(";");
      const at = pair.indexOf("=");
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === "";
      if (expired) cookies.delete(name);
      else cookies.set(name, value);
    }
    this.jar.set(host, cookies);
  }
}

function unescapeHtml(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_, code) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">");
}

/** The sign-in at oidc-provider's development forms: log in as `account`, then consent. */
export async function signInUpstream(
  browser: ScriptedBrowser,
  loginPage: Stop,
  account: string,
  until: (url: string) => boolean,
) {
  let stop = await browser.submit(loginPage, { login: account, password: "any" }, until);
  // The provider asks for consent to the scopes once per client and person.
  if (!until(stop.url) && /name="prompt" value="consent"/.test(stop.body)) {
    stop = await browser.submit(stop, {}, until);
  }
  return stop;
}

/** A PKCE verifier and its S256 challenge. */
export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url(new Uint8Array(digest)) };
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}
