/**
 * Origin validation (MCP Streamable HTTP transport, "Security Warning": servers MUST validate the
 * Origin header to prevent DNS rebinding). Agents that are not browsers send no Origin and pass.
 */

const LOCALHOST = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Whether a request carrying `origin` may reach the gateway. */
export function originAllowed(
  origin: string | null | undefined,
  requestUrl: URL,
  allowed: readonly string[],
): boolean {
  if (!origin) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  if (parsed.origin === requestUrl.origin) return true;
  if (allowed.includes(parsed.origin)) return true;
  // A page on the same machine may talk to a gateway on localhost; a page anywhere else may not.
  return LOCALHOST.has(requestUrl.hostname) && LOCALHOST.has(parsed.hostname);
}
