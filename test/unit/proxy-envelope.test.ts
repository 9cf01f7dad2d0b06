// The request body's envelope (workers/proxy/src/core/envelope.ts): what is refused whole before
// anything acts on it, and how the audit names a message's method (core/methods.ts).
import { describe, expect, it } from "vitest";
import { parseEnvelope } from "../../workers/proxy/src/core/envelope.ts";
import { methodLabel } from "../../workers/proxy/src/core/methods.ts";

const call = (id: unknown, name = "mcp1_echo") => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: { message: "x" } },
});

describe("a batch whose requests share an id", () => {
  it("is refused whole, as an invalid request", () => {
    const envelope = parseEnvelope([call(1, "mcp1_report_on_battle_end"), call(2), call(1)]);
    expect(envelope).toMatchObject({
      ok: false,
      label: "batch",
      id: null,
      violation: "the requests of a batch must have distinct ids",
    });
  });

  it('counts 1 and "1" as the same id', () => {
    expect(parseEnvelope([call(1), call("1")]).ok).toBe(false);
  });

  it("is a batch with distinct ids when only notifications or answers repeat", () => {
    const notification = { jsonrpc: "2.0", method: "notifications/initialized" };
    const answer = { jsonrpc: "2.0", id: 1, result: {} };
    expect(parseEnvelope([call(1), call(2), notification, notification, answer]).ok).toBe(true);
  });
});

describe("the method a record names", () => {
  it("is the method when MCP defines it", () => {
    for (const method of ["tools/call", "initialize", "notifications/cancelled", "tasks/get"]) {
      expect(methodLabel(method)).toBe(method);
    }
  });

  it("is unknown for any other string, never the agent's text", () => {
    for (const method of ["tools/cal", "toString", "__proto__", "x".repeat(10_000), "\u001b[31m"]) {
      expect(methodLabel(method)).toBe("unknown");
    }
    const envelope = parseEnvelope({ jsonrpc: "2.0", id: 1, method: "rm -rf /" });
    expect(envelope).toMatchObject({ ok: true, label: "unknown" });
  });

  it("is null for a message without one", () => {
    expect(methodLabel(undefined)).toBeNull();
    expect(parseEnvelope({ jsonrpc: "2.0", id: 1, result: {} })).toMatchObject({ label: null });
  });
});
