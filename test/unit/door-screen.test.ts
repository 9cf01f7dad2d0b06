/**
 * The pure parts of doors and the Host check, in Node: what a door forwards or answers, what it
 * hides from results, what sealing binds a value to, and which Host names reach the gateway.
 */
import { describe, expect, it } from "vitest";
import { hostAllowed, parseHostRules } from "../../workers/proxy/src/core/host.ts";
import { parsePolicy } from "../../workers/proxy/src/core/policy.ts";
import { open, seal, sealKeyFrom, stateToSeal } from "../../workers/proxy/src/core/seal.ts";
import { screenInbound, screenResult, type Viewer } from "../../workers/proxy/src/relay/screen.ts";

const policy = (() => {
  const parsed = parsePolicy(JSON.stringify({ whole: { ext: "*" }, narrow: { ext: ["echo"] } }), [
    "ext",
  ]);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
})();
const whole: Viewer = { policy, agent: "whole", server: "ext", claims: {} };
const narrow: Viewer = { policy, agent: "narrow", server: "ext", claims: {} };

const request = (method: string, params?: object) => ({ jsonrpc: "2.0", id: 1, method, params });

describe("what a door forwards", () => {
  it("forwards notifications and the agent's answers as they are", () => {
    const answer = { jsonrpc: "2.0", id: "srv-1", result: { action: "accept" } };
    const cancel = { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } };
    expect(screenInbound(narrow, answer)).toEqual({ action: "forward", message: answer });
    expect(screenInbound(narrow, cancel)).toEqual({ action: "forward", message: cancel });
  });

  it("answers a call to a tool the grant does not name as an unknown tool", () => {
    expect(screenInbound(narrow, request("tools/call", { name: "wait" }))).toEqual({
      action: "answer",
      id: 1,
      error: { code: -32602, message: "Tool wait not found" },
    });
    expect(screenInbound(narrow, request("tools/call", { name: "echo" })).action).toBe("forward");
    expect(screenInbound(narrow, request("tools/call", {})).action).toBe("answer");
  });

  it("answers resources, prompts and completion as a server without them, unless held whole", () => {
    for (const method of [
      "resources/read",
      "prompts/get",
      "completion/complete",
      "resources/subscribe",
    ]) {
      expect(screenInbound(narrow, request(method, {})), method).toMatchObject({
        action: "answer",
        error: { code: -32601 },
      });
      expect(screenInbound(whole, request(method, {})).action, method).toBe("forward");
    }
  });

  it("refuses a request with an unreadable id, and drops a request sent as a notification", () => {
    const badId = { jsonrpc: "2.0", id: true, method: "tools/call", params: { name: "wait" } };
    expect(screenInbound(narrow, badId)).toMatchObject({ action: "answer", id: null });
    const sneaky = { jsonrpc: "2.0", method: "tools/call", params: { name: "wait" } };
    expect(screenInbound(whole, sneaky)).toEqual({ action: "drop" });
  });

  it("opens a request state before a retry goes on", () => {
    const retry = request("tools/call", { name: "echo", requestState: "sealed" });
    expect(screenInbound(narrow, retry)).toMatchObject({ action: "open_state", sealed: "sealed" });
  });
});

describe("what a door shows of a result", () => {
  const tools = { tools: [{ name: "echo" }, { name: "wait" }] };
  const init = {
    protocolVersion: "2025-11-25",
    serverInfo: { name: "x", version: "1" },
    capabilities: { tools: {}, resources: {}, prompts: {}, completions: {}, logging: {} },
  };

  it("leaves the named tools of a narrow grant, and everything of a whole one, untouched", () => {
    expect(screenResult(narrow, "tools/list", tools)).toEqual({ tools: [{ name: "echo" }] });
    expect(screenResult(whole, "tools/list", tools)).toBeUndefined();
  });

  it("drops the capabilities only a whole grant reaches", () => {
    expect(screenResult(narrow, "initialize", init)?.capabilities).toEqual({
      tools: {},
      logging: {},
    });
    expect(screenResult(whole, "initialize", init)).toBeUndefined();
  });

  it("recognises a tool list and an initialize result by shape on a resumed stream", () => {
    expect(screenResult(narrow, undefined, tools)).toEqual({ tools: [{ name: "echo" }] });
    expect(Object.keys(screenResult(narrow, undefined, init)?.capabilities ?? {})).toEqual([
      "tools",
      "logging",
    ]);
    // A tool's own result that happens to hold a `tools` key is content, not a listing.
    const content = { content: [], tools: [{ name: "wait" }] };
    expect(screenResult(narrow, undefined, content)).toBeUndefined();
  });

  it("finds the state of an input_required result, and nothing else", () => {
    expect(stateToSeal({ resultType: "input_required", requestState: "s1" })).toBe("s1");
    expect(stateToSeal({ resultType: "complete", requestState: "s1" })).toBeUndefined();
  });
});

describe("sealing", () => {
  it("opens only for the agent, server and kind it was sealed for", async () => {
    const key = await sealKeyFrom("a-test-secret");
    const binding = { agent: "a", server: "ext", kind: "session" } as const;
    const sealed = await seal(key, binding, "upstream-session-1");
    expect(sealed).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain("upstream");
    expect(await open(key, binding, sealed)).toBe("upstream-session-1");
    expect(await open(key, { ...binding, agent: "b" }, sealed)).toBeUndefined();
    expect(await open(key, { ...binding, server: "mcp1" }, sealed)).toBeUndefined();
    expect(await open(key, { ...binding, kind: "request_state" }, sealed)).toBeUndefined();
    expect(await open(await sealKeyFrom("another"), binding, sealed)).toBeUndefined();
    const flipped = `${sealed.slice(0, -2)}${sealed.at(-2) === "A" ? "B" : "A"}${sealed.at(-1)}`;
    expect(await open(key, binding, flipped)).toBeUndefined();
    for (const junk of ["", "not base64!", "A", "x".repeat(9000)]) {
      expect(await open(key, binding, junk)).toBeUndefined();
    }
  });
});

describe("the Host check", () => {
  const rules = (() => {
    const parsed = parseHostRules(["proxy.example.com", "*.workers.dev"]);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  })();

  it("admits the loopback names on any port and the configured names", () => {
    for (const host of [
      "localhost:9003",
      "127.0.0.1",
      "[::1]:9003",
      "proxy.example.com",
      "a.workers.dev",
    ]) {
      expect(hostAllowed(host, rules), host).toBe(true);
    }
  });

  it("refuses every other name, a bare parent domain and a malformed header", () => {
    for (const host of [
      "evil.example.com",
      "workers.dev",
      "evilworkers.dev",
      "",
      "localhost, evil.com",
    ]) {
      expect(hostAllowed(host, rules), host).toBe(false);
    }
    expect(hostAllowed(null, rules)).toBe(false);
  });

  it("refuses an ALLOWED_HOSTS entry that is not a name, naming it", () => {
    expect(parseHostRules(["http://x.com"])).toEqual({
      ok: false,
      error: "ALLOWED_HOSTS entry is not a host name or *.domain: http://x.com",
    });
  });
});
