/**
 * How the proxy tells a backend which agent is calling.
 *
 * The agent's own token never leaves the proxy. For mcp1 the header travels over the service
 * binding, which nobody outside the proxy can reach in production. For mcp2/mcp3 it is replaced by
 * a signed proxy assertion (issue 7); until then the Node backends bind to loopback only.
 */
export const AGENT_HEADER = "mcpcp-agent";
