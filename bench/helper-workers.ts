/**
 * Two small Workers the benchmark runs beside the system under test, as module source:
 * a pass-through (the floor any Worker hop costs) and a recorder (what reaches each backend).
 */

/**
 * A Worker that forwards the request untouched, with the proxy's I/O (service binding to mcp1,
 * fetch to mcp2) and none of its logic. What the proxy costs beyond it is the proxy's own work.
 */
export const PASS_THROUGH_WORKER = `
export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/mcp1") return env.MCP1.fetch(new Request("https://mcp1.internal/mcp", request));
    if (pathname === "/mcp2") return fetch(new Request(env.MCP2_URL, request));
    return new Response("not found", { status: 404 });
  },
};
`;

/**
 * Forwards to mcp1 (service binding), mcp2 or mcp3 (by path) and counts each request by backend,
 * HTTP method and JSON-RPC method, keeping the first of each as a sample; `GET /counts` returns
 * `{ counts, samples }` and starts the counts afresh.
 */
export const RECORDER_WORKER = `
let counts = {};
const samples = {};
export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/counts") {
      const seen = counts;
      counts = {};
      return Response.json({ counts: seen, samples });
    }
    const target = pathname === "/mcp2" ? "mcp2" : pathname === "/mcp3" ? "mcp3" : "mcp1";
    const body = request.method === "POST" ? await request.text() : undefined;
    let methods = "";
    if (body) {
      try {
        const parsed = JSON.parse(body);
        methods = (Array.isArray(parsed) ? parsed : [parsed]).map((m) => m.method ?? "(response)").join("+");
      } catch {
        methods = "(not JSON)";
      }
    }
    const key = (target + " " + request.method + " " + methods).trim();
    counts[key] = (counts[key] ?? 0) + 1;
    samples[key] ??= { headers: Object.fromEntries(request.headers), body };
    const init = { method: request.method, headers: request.headers, body };
    if (target === "mcp1") return env.MCP1.fetch(new Request("https://mcp1.internal/mcp", init));
    return fetch(target === "mcp2" ? env.MCP2_URL : env.MCP3_URL, init);
  },
};
`;
