/**
 * How the proxy tells a backend which agent is calling.
 *
 * The agent's own token never leaves the proxy. For mcp1 the header travels over the service
 * binding, which nobody outside the proxy can reach in production. mcp2/mcp3 get the proxy's signed
 * assertion instead (`assertion.ts`; docs/design.md, "Backend identity").
 */
export const AGENT_HEADER = "mcpcp-agent";
