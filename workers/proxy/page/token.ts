/**
 * The admin token in the browser. It is pasted into the page, kept in this tab's sessionStorage
 * (gone when the tab closes), sent only in the Authorization header, and never put in a URL.
 */

const STORAGE_KEY = "mcpcp.adminToken";

/** The stored token, unless it is missing or visibly expired. */
export function currentToken(): string | null {
  const token = sessionStorage.getItem(STORAGE_KEY);
  if (!token) return null;
  const { exp } = tokenClaims(token);
  if (typeof exp === "number" && exp * 1000 <= Date.now()) {
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

/** What the token says about itself, for display only: the gateway is what checks it. */
export function tokenClaims(token: string): { sub?: string; client_id?: string; exp?: number } {
  const payload = token.split(".")[1];
  if (!payload) return {};
  try {
    const claims: unknown = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
    return typeof claims === "object" && claims !== null ? claims : {};
  } catch {
    return {};
  }
}
