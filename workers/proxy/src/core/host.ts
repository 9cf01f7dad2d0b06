/**
 * Host validation (MCP Streamable HTTP transport, "Security Warning": DNS rebinding). A page on
 * `evil.example.com` whose name an attacker points at 127.0.0.1 reaches a local gateway with
 * `Host: evil.example.com` and a matching `Origin`, so checking the Origin against the request's
 * own URL proves nothing: the Host itself must be one this gateway answers to.
 *
 * Allowed: the loopback names (`localhost`, `127.0.0.1`, `[::1]`, any port), and the names in
 * `ALLOWED_HOSTS`: exact host names, or `*.example.com` for any name under `example.com`.
 */
import { localhostAllowedHostnames, validateHostHeader } from "@modelcontextprotocol/server";

/** One `ALLOWED_HOSTS` entry, parsed. */
export type HostRule = { exact: string } | { suffix: string };

const NAME = /^(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/** Parses the entries of `ALLOWED_HOSTS`, or names the first that is not a host name. */
export function parseHostRules(
  entries: readonly string[],
): { ok: true; value: HostRule[] } | { ok: false; error: string } {
  const rules: HostRule[] = [];
  for (const entry of entries) {
    const name = entry.toLowerCase();
    if (!NAME.test(name)) {
      return {
        ok: false,
        error: `ALLOWED_HOSTS entry is not a host name or *.domain: ${entry}`,
      };
    }
    rules.push(name.startsWith("*.") ? { suffix: name.slice(1) } : { exact: name });
  }
  return { ok: true, value: rules };
}

/**
 * Whether a request whose `Host` header is `host` may reach the gateway. Reading the header (a
 * port, IPv6 brackets, a malformed value) is the SDK's `validateHostHeader`; the wildcard rules
 * are the gateway's, for deployments under a shared domain such as workers.dev.
 */
export function hostAllowed(host: string | null, rules: readonly HostRule[]): boolean {
  const exact = rules.flatMap((rule) => ("exact" in rule ? [rule.exact] : []));
  const checked = validateHostHeader(host, [...localhostAllowedHostnames(), ...exact]);
  if (checked.ok) return true;
  const name = checked.errorCode === "invalid_host" ? checked.hostname : undefined;
  return (
    name !== undefined &&
    rules.some((rule) => "suffix" in rule && name.toLowerCase().endsWith(rule.suffix))
  );
}
