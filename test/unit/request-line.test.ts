// The launcher's one line per request, from the proxy's audit log line (scripts/request-line.ts).
import { describe, expect, it } from "vitest";
import { requestLine } from "../../scripts/request-line.ts";

const at = new Date(2026, 11, 1, 14, 3, 27).toISOString();

function audit(fields: Record<string, unknown>): string {
  return JSON.stringify({
    event: "audit",
    at,
    request_id: "r-1",
    agent: "agent_name1",
    method: "tools/call",
    server: "mcp1",
    tool: "echo",
    decision: "allow",
    outcome: "ok",
    status: 200,
    duration_ms: 28,
    bytes_in: 125,
    bytes_out: 124,
    ...fields,
  });
}

/** The line's fields, whatever the padding between them. */
function fields(line: string | undefined): string[] {
  return (line ?? "").split(/\s{2,}/);
}

describe("requestLine", () => {
  it("gives time, agent, method, server_tool, status and duration", () => {
    expect(fields(requestLine(audit({})))).toEqual([
      "14:03:27",
      "agent_name1",
      "tools/call",
      "mcp1_echo",
      "200",
      "28 ms",
    ]);
  });

  it("keeps the columns aligned", () => {
    const a = requestLine(audit({}));
    const b = requestLine(audit({ agent: "x", method: "initialize", server: null, tool: null }));
    expect(a?.indexOf("200")).toBe(b?.indexOf("200"));
  });

  it("adds the decision and the outcome when they are not allow and ok", () => {
    const line = requestLine(
      audit({ decision: "deny_policy", outcome: "rpc_error", server: null, tool: null }),
    );
    expect(fields(line).slice(3)).toEqual(["-", "200", "28 ms", "deny_policy", "rpc_error"]);
  });

  it("shows - for a missing method or tool, and a batch as such", () => {
    expect(fields(requestLine(audit({ method: null, server: null, tool: null })))[2]).toBe("-");
    expect(fields(requestLine(audit({ method: "batch", server: null, tool: null })))[2]).toBe(
      "batch",
    );
  });

  it("gives each message of a batch its own line, with its place in the batch", () => {
    const lines = [
      audit({ message_index: 0, tool: "report_on_battle_end", outcome: "tool_error" }),
      audit({ message_index: 1 }),
      audit({ message_index: 2, server: "mcp2", decision: "deny_policy", outcome: "rpc_error" }),
    ].map((line) => fields(requestLine(line)));
    expect(lines).toEqual([
      [
        "14:03:27",
        "agent_name1",
        "tools/call [0]",
        "mcp1_report_on_battle_end",
        "200",
        "28 ms",
        "tool_error",
      ],
      ["14:03:27", "agent_name1", "tools/call [1]", "mcp1_echo", "200", "28 ms"],
      [
        "14:03:27",
        "agent_name1",
        "tools/call [2]",
        "mcp2_echo",
        "200",
        "28 ms",
        "deny_policy",
        "rpc_error",
      ],
    ]);
    // A request that is not a batch has no place to show, as before records had one.
    expect(fields(requestLine(audit({ message_index: null })))[2]).toBe("tools/call");
  });

  it("escapes control characters in names an agent wrote, and cuts long ones", () => {
    const line = requestLine(audit({ server: null, tool: "\u001b[2Jmcp9_x" })) ?? "";
    expect(line).not.toContain("\u001b");
    expect(fields(line)[3]).toBe("\\u{1b}[2Jmcp9_x");
    const long = fields(requestLine(audit({ server: null, tool: "t".repeat(200) })))[3] ?? "";
    expect(long).toHaveLength(40);
    expect(long.endsWith("…")).toBe(true);
  });

  it("finds the record behind a prefix", () => {
    expect(requestLine(`[proxy] ${audit({})}`)).toBe(requestLine(audit({})));
  });

  it("gives one decimal below 10 ms when the duration has them", () => {
    expect(fields(requestLine(audit({ duration_ms: 3.42 })))[5]).toBe("3.4 ms");
    expect(fields(requestLine(audit({ duration_ms: 3 })))[5]).toBe("3 ms");
  });

  it("stands in for the missing record of a 401 with wrangler's line", () => {
    const now = new Date(2026, 11, 1, 14, 3, 28);
    const line = requestLine("[wrangler:info] POST /mcp 401 Unauthorized (5ms)", now);
    expect(fields(line)).toEqual([
      "14:03:28",
      "?",
      "POST /mcp",
      "-",
      "401",
      "5 ms",
      "unauthenticated",
    ]);
  });

  it("ignores every other line", () => {
    for (const line of [
      "[wrangler:info] POST /mcp 200 OK (12ms)",
      "[wrangler:info] GET /battles 401 Unauthorized (2ms)",
      '{"event":"auth_failed","code":"invalid_token"}',
      '{"event":"audit","agent":"a"}',
      audit({ message_index: "0" }),
      '{"event":"audit",',
      "Your Worker has access to the following bindings:",
    ]) {
      expect(requestLine(line)).toBeUndefined();
    }
  });
});
