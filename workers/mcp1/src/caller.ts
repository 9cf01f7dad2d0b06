/**
 * Who is calling. The proxy names the agent in AGENT_HEADER on every request it sends over the
 * service binding; nothing else can reach mcp1 in production (wrangler.toml: workers_dev = false).
 */
import { AGENT_HEADER } from "../../../common/identity.ts";

/** The agent the proxy names in AGENT_HEADER, or null when the request carries none. */
export function agentOf(request: Request | undefined): string | null {
  const agent = request?.headers.get(AGENT_HEADER)?.trim();
  return agent ? agent : null;
}
