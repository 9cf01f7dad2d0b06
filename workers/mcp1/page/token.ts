/**
 * The inspection token in the browser. The launcher prints `…/battles#token=<jwt>`: a fragment
 * never leaves the browser (no server or proxy log sees it), and the script moves it into this
 * tab's sessionStorage and strips it from the address bar, history and any screenshot.
 */

const STORAGE_KEY = "mcpcp.inspectToken";

/** Moves a `#token=…` fragment into session storage and removes it from the URL. */
export function adoptFragmentToken(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match?.[1]) return;
  sessionStorage.setItem(STORAGE_KEY, decodeURIComponent(match[1]));
  history.replaceState(history.state, "", `${location.pathname}${location.search}`);
}

/** The stored token, unless it is missing or visibly expired. */
export function currentToken(): string | null {
  const token = sessionStorage.getItem(STORAGE_KEY);
  if (!token) return null;
  const expiry = tokenExpiry(token);
  if (expiry !== null && expiry * 1000 <= Date.now()) {
    forgetToken();
    return null;
  }
  return token;
}

export function rememberToken(token: string): void {
  sessionStorage.setItem(STORAGE_KEY, token.trim());
}

export function forgetToken(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** What the token says about itself, for display only: the server is what checks it. */
export function tokenClaims(token: string): { sub?: string; exp?: number } {
  const payload = token.split(".")[1];
  if (!payload) return {};
  try {
    const json = atob(payload.replaceAll("-", "+").replaceAll("_", "/"));
    const claims: unknown = JSON.parse(json);
    return typeof claims === "object" && claims !== null ? (claims as { sub?: string }) : {};
  } catch {
    return {};
  }
}

function tokenExpiry(token: string): number | null {
  const { exp } = tokenClaims(token);
  return typeof exp === "number" ? exp : null;
}
