/**
 * The launcher's one line per request, made from the proxy's audit log line (workers/proxy/src/
 * audit.ts prints `{"event":"audit",...}` with console.log for every authenticated request):
 *
 *   14:03:27  agent_name1   initialize                 -                           200     36 ms
 *   14:03:27  agent_name1   tools/call                 mcp1_echo                   200     28 ms
 *
 * Time (local), agent, method, server_tool, status and duration; then the decision and the
 * outcome, only when they are not `allow` and `ok` (`deny_policy  rpc_error`). A request refused
 * before it has an agent (401) has no audit record: wrangler's own line for it stands in, as agent
 * `?`, method `POST /mcp` and the note `unauthenticated`.
 */

interface AuditLine {
  event: "audit";
  at: string;
  agent: string;
  method: string | null;
  server: string | null;
  tool: string | null;
  decision?: string;
  outcome?: string;
  status: number;
  duration_ms: number;
}

function isAuditLine(value: unknown): value is AuditLine {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const nullableString = (x: unknown) => x === null || x === undefined || typeof x === "string";
  return (
    v.event === "audit" &&
    typeof v.at === "string" &&
    typeof v.agent === "string" &&
    typeof v.status === "number" &&
    typeof v.duration_ms === "number" &&
    nullableString(v.method) &&
    nullableString(v.server) &&
    nullableString(v.tool)
  );
}

/** `server_tool` as the agent named it, the server alone, or `-` (initialize, ping, batch...). */
function target(server: string | null, tool: string | null): string {
  if (server && tool) return `${server}_${tool}`;
  return server || tool || "-";
}

function clock(at: string): string {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return at;
  return [date.getHours(), date.getMinutes(), date.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

function duration(ms: number): string {
  if (Number.isInteger(ms) || ms >= 10) return String(Math.round(ms));
  return ms.toFixed(1);
}

function columns(
  time: string,
  agent: string,
  method: string,
  tool: string,
  status: number,
  ms: number,
  notes: string[],
): string {
  return [
    time,
    agent.padEnd(12),
    method.padEnd(25),
    tool.padEnd(26),
    String(status).padStart(3),
    `${duration(ms).padStart(5)} ms`,
    ...notes,
  ].join("  ");
}

/** wrangler dev's line for a request, as `[wrangler:info] POST /mcp 401 Unauthorized (5ms)`. */
const WRANGLER_REQUEST = /^\[wrangler:info\] ([A-Z]+) (\/mcp\S*) 401 .*\((\d+)ms\)$/;

/**
 * The short line for one line of the proxy's output: from an audit record, or from wrangler's
 * line for a 401 on /mcp; undefined for anything else.
 */
export function requestLine(line: string, now: Date = new Date()): string | undefined {
  const refused = WRANGLER_REQUEST.exec(line);
  if (refused) {
    const [, verb, path, ms] = refused;
    const time = clock(now.toISOString());
    return columns(time, "?", `${verb} ${path}`, "-", 401, Number(ms), ["unauthenticated"]);
  }
  const start = line.indexOf('{"event":"audit"');
  if (start < 0) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(line.slice(start));
  } catch {
    return undefined;
  }
  if (!isAuditLine(record)) return undefined;
  const notes = [
    record.decision && record.decision !== "allow" ? record.decision : "",
    record.outcome && record.outcome !== "ok" ? record.outcome : "",
  ].filter(Boolean);
  return columns(
    clock(record.at),
    record.agent,
    record.method ?? "-",
    target(record.server, record.tool),
    record.status,
    record.duration_ms,
    notes,
  );
}
