/**
 * The launcher's one line per request, made from the proxy's audit log lines (workers/proxy/src/
 * state/audit-store.ts prints `{"event":"audit",...}` for every record: one per authenticated
 * request, or one per message of a batch):
 *
 *   14:03:27  agent_name1   initialize                 -                           200     36 ms
 *   14:03:27  agent_name1   tools/call                 mcp1_echo                   200     28 ms
 *   14:03:28  agent_name1   tools/call [0]             mcp1_report_on_battle_end   200     41 ms
 *   14:03:28  agent_name1   tools/call [1]             mcp1_echo                   200     41 ms
 *
 * Time (local), agent, method (with the message's place in its batch, from 0), server_tool,
 * status and duration (a batch's lines share the request's); then the decision and the outcome,
 * only when they are not `allow` and `ok` (`deny_policy  rpc_error`). A request refused before it
 * has an agent (401) has no audit record: wrangler's own line for it stands in, as agent `?`,
 * method `POST /mcp` and the note `unauthenticated`. Names an agent wrote (a refused tool's) are
 * shown with control characters escaped and cut to fit, so they cannot drive the terminal.
 */

interface AuditLine {
  event: "audit";
  at: string;
  agent: string;
  method: string | null;
  message_index?: number | null;
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
    nullableString(v.tool) &&
    (v.message_index === null || v.message_index === undefined || Number.isInteger(v.message_index))
  );
}

/** The longest name a line shows whole. */
const SHOWN = 40;

/** `text` safe for a terminal: control and format (direction) characters escaped, cut to SHOWN. */
function printable(text: string): string {
  const escaped = text.replace(
    /[\p{Cc}\p{Cf}]/gu,
    (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
  );
  return escaped.length > SHOWN ? `${escaped.slice(0, SHOWN - 1)}…` : escaped;
}

/** `server_tool` as the agent named it, the server alone, or `-` (initialize, ping, batch...). */
function target(server: string | null, tool: string | null): string {
  if (server && tool) return printable(`${server}_${tool}`);
  return printable(server || tool || "-");
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
  const index = typeof record.message_index === "number" ? ` [${record.message_index}]` : "";
  return columns(
    clock(record.at),
    printable(record.agent),
    `${printable(record.method ?? "-")}${index}`,
    target(record.server, record.tool),
    record.status,
    record.duration_ms,
    notes,
  );
}
