import { describe, expect, it } from "vitest";
import { compileCondition } from "../../workers/proxy/src/core/conditions.ts";
import { messagesOf } from "../../workers/proxy/src/core/envelope.ts";
import {
  allows,
  decideRules,
  hasRules,
  parsePolicy,
  readPolicy,
  rulesFor,
  serversFor,
} from "../../workers/proxy/src/core/policy.ts";
import { missingScope as missingIn } from "../../workers/proxy/src/core/scopes.ts";

/** The scope check as the pipeline makes it: over the body's parsed envelope. */
const missingScope = (body: unknown, granted: ReadonlySet<string>) =>
  missingIn(messagesOf(body), granted);

import {
  mayBeMapped,
  prefixToolName,
  prefixUri,
  resolveMapped,
  splitToolName,
  splitUri,
} from "../../workers/proxy/src/core/names.ts";

const SERVERS = ["mcp1", "mcp2", "mcp3"];
const SEED = JSON.stringify({
  agent_name1: { mcp1: "*", mcp3: "*" },
  agent_name2: { mcp2: "*", mcp3: ["echo"] },
});

function seed() {
  const parsed = parsePolicy(SEED, SERVERS);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

describe("readPolicy", () => {
  it("keeps POLICY's document as written, so its seed hash is the one an existing store knows", () => {
    // A rule written `when` first: a schema's output would put `tool` first and change the hash,
    // and a store would take an unchanged POLICY in again as a new deployment.
    const text = JSON.stringify({ red: { mcp1: [{ when: "true", tool: "echo" }, "list"] } });
    const read = readPolicy(text, SERVERS, compileCondition);
    if (!read.ok) throw new Error(read.error);
    expect(JSON.stringify(read.value.document)).toBe(text);
    expect(allows(read.value.policy, "red", "mcp1", "echo")).toBe(true);
  });

  it("names POLICY and the place in it, as parsePolicy does", () => {
    expect(readPolicy("{", SERVERS)).toMatchObject({
      ok: false,
      error: /^POLICY is not valid JSON/,
    });
    expect(readPolicy('{"red":{"mcp1":"all"}}', SERVERS)).toMatchObject({
      ok: false,
      error: /^POLICY is invalid at red\.mcp1/,
    });
  });
});

describe("parsePolicy", () => {
  it("accepts the seed's shape", () => {
    expect(parsePolicy(SEED, SERVERS).ok).toBe(true);
  });

  it.each([
    ["not JSON", "{", /not valid JSON/],
    ["a list at the root", "[]", /invalid at \(root\)/],
    ["a grant that is neither * nor a list", '{"a":{"mcp1":"all"}}', /invalid at a\.mcp1/],
    ["an empty tool name", '{"a":{"mcp1":[""]}}', /invalid at a\.mcp1\.0/],
    ["a server id with an underscore", '{"a":{"mcp_1":"*"}}', /server ids match/],
    ["a server the gateway does not know", '{"a":{"mcp9":"*"}}', /"mcp9", which is not configured/],
  ])("refuses %s with a message naming the place", (_name, json, message) => {
    const parsed = parsePolicy(json, SERVERS);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(message);
  });
});

describe("policy decisions", () => {
  it("lists an agent's servers in sorted order", () => {
    expect(serversFor(seed(), "agent_name2")).toEqual(["mcp2", "mcp3"]);
  });

  it("grants every tool of a * server and only the named tools of a listed one", () => {
    const policy = seed();
    expect(allows(policy, "agent_name2", "mcp2", "run_docker")).toBe(true);
    expect(allows(policy, "agent_name2", "mcp3", "echo")).toBe(true);
    expect(allows(policy, "agent_name2", "mcp3", "run_python_code")).toBe(false);
  });

  it("grants nothing on servers outside an agent's policy", () => {
    expect(allows(seed(), "agent_name2", "mcp1", "echo")).toBe(false);
  });

  it("grants nothing to an agent absent from the policy", () => {
    expect(serversFor(seed(), "stranger")).toEqual([]);
    expect(allows(seed(), "stranger", "mcp1", "echo")).toBe(false);
  });
});

describe("tool names", () => {
  it("prefix and split are inverse, splitting at the first underscore", () => {
    expect(prefixToolName("mcp1", "update_battle_process")).toBe("mcp1_update_battle_process");
    expect(splitToolName("mcp1_update_battle_process")).toEqual({
      server: "mcp1",
      tool: "update_battle_process",
    });
  });

  it.each(["echo", "_echo", "mcp1_", "MCP1_echo", "1mcp_echo", ""])("refuses %j", (name) => {
    expect(splitToolName(name)).toBeUndefined();
  });
});

describe("missingScope", () => {
  const both = new Set(["list_tools", "call_tools"]);

  it("needs list_tools for tools/list and call_tools for tools/call", () => {
    expect(missingScope({ id: 1, method: "tools/list" }, new Set(["call_tools"]))).toEqual({
      id: 1,
      scope: "list_tools",
    });
    expect(missingScope({ id: "x", method: "tools/call" }, new Set(["list_tools"]))).toEqual({
      id: "x",
      scope: "call_tools",
    });
    expect(missingScope({ id: 1, method: "tools/call" }, both)).toBeUndefined();
  });

  it("needs an MCP scope, either one, to initialize or ping: audit_read alone opens nothing", () => {
    for (const method of ["initialize", "ping", "server/discover"]) {
      expect(missingScope({ id: 1, method }, new Set(["list_tools"])), method).toBeUndefined();
      expect(missingScope({ id: 1, method }, new Set(["call_tools"])), method).toBeUndefined();
      expect(missingScope({ id: 1, method }, new Set(["audit_read"])), method).toEqual({
        id: 1,
        scope: "list_tools",
      });
    }
  });

  it("needs call_tools for everything that returns a backend's data, list_tools to list", () => {
    for (const method of [
      "resources/read",
      "prompts/get",
      "completion/complete",
      "resources/subscribe",
      "logging/setLevel",
      "tasks/get",
    ]) {
      expect(missingScope({ id: 1, method }, new Set(["list_tools"])), method).toEqual({
        id: 1,
        scope: "call_tools",
      });
    }
    for (const method of ["resources/list", "resources/templates/list", "prompts/list"]) {
      expect(missingScope({ id: 1, method }, new Set(["call_tools"])), method).toEqual({
        id: 1,
        scope: "list_tools",
      });
    }
    // An agent's answer to a backend's question carries no method, and needs either scope.
    expect(missingScope({ id: "q1", result: {} }, new Set(["audit_read"]))).toEqual({
      id: "q1",
      scope: "list_tools",
    });
    expect(missingScope({ jsonrpc: "2.0", method: "notifications/cancelled" }, new Set())).toBe(
      undefined,
    );
  });

  it("checks every message of a batch", () => {
    const batch = [
      { id: 1, method: "ping" },
      { id: 2, method: "tools/call" },
    ];
    expect(missingScope(batch, new Set(["list_tools"]))).toEqual({ id: 2, scope: "call_tools" });
  });
});

describe("missingScope with hostile method names", () => {
  it.each(["toString", "constructor", "__proto__", "hasOwnProperty"])(
    "treats %j as an unknown method (call_tools), not as a property of Object.prototype",
    (method) => {
      expect(missingScope({ id: 1, method }, new Set(["call_tools"]))).toBeUndefined();
      expect(missingScope({ id: 1, method }, new Set(["list_tools"]))?.scope).toBe("call_tools");
    },
  );
});

describe("names the model providers accept", () => {
  const safe = /^[A-Za-z0-9_-]{1,64}$/;

  it("leaves a valid name alone", () => {
    expect(prefixToolName("mcp2", "run_docker")).toBe("mcp2_run_docker");
  });

  it.each([
    ["dots and slashes", "files.read/v2"],
    ["spaces and unicode", "résumé builder ✓"],
    ["a very long name", "x".repeat(80)],
    ["an empty-looking name", "..."],
  ])("maps %s to a safe, stable name the proxy can reverse", (_what, tool) => {
    const shown = prefixToolName("mcp9", tool);
    expect(shown).toMatch(safe);
    expect(shown.startsWith("mcp9_")).toBe(true);
    expect(prefixToolName("mcp9", tool)).toBe(shown);
    expect(mayBeMapped(shown)).toBe(true);
    const split = splitToolName(shown);
    expect(split?.server).toBe("mcp9");
    expect(resolveMapped("mcp9", shown, ["other", tool, "x".repeat(79)])).toBe(tool);
  });

  it("keeps two long names that share a prefix apart", () => {
    expect(prefixToolName("mcp9", `${"a".repeat(70)}1`)).not.toBe(
      prefixToolName("mcp9", `${"a".repeat(70)}2`),
    );
  });
});

describe("resource URIs", () => {
  it("prefix with the server as the scheme's first part, and split back at the first +", () => {
    expect(prefixUri("mcp1", "battle://b-1")).toBe("mcp1+battle://b-1");
    expect(splitUri("mcp1+battle://b-1")).toEqual({ server: "mcp1", uri: "battle://b-1" });
    expect(splitUri("mcp1+file:///a+b")).toEqual({ server: "mcp1", uri: "file:///a+b" });
  });

  it.each(["battle://b-1", "+battle://x", "mcp1+", "MCP1+battle://x", "mc_p1+x://y"])(
    "refuses %j",
    (uri) => {
      expect(splitUri(uri)).toBeUndefined();
    },
  );
});

describe("grants under rules", () => {
  const doc = {
    red: {
      mcp2: ["echo", { tool: "run_docker", when: 'args.command.startsWith("ps")' }],
      mcp1: [{ tool: "*", when: "args.battle_id in claims.battles" }],
    },
  };
  const parsed = () => {
    const result = parsePolicy(JSON.stringify(doc), SERVERS, compileCondition);
    if (!result.ok) throw new Error(result.error);
    return result.value;
  };
  const input = (tool: string, args: Record<string, unknown>, claims = {}) => ({
    claims,
    agent: "red",
    server: "mcp2",
    tool,
    args,
    annotations: {},
  });

  it("shows every tool a rule may allow, and hides the rest", () => {
    const policy = parsed();
    expect(allows(policy, "red", "mcp2", "run_docker")).toBe(true);
    expect(allows(policy, "red", "mcp2", "echo")).toBe(true);
    expect(allows(policy, "red", "mcp2", "other")).toBe(false);
    expect(allows(policy, "red", "mcp1", "anything")).toBe(true);
  });

  it("needs no rule for a tool granted outright, and decides the others by their rules", () => {
    const policy = parsed();
    expect(rulesFor(policy, "red", "mcp2", "echo")).toEqual([]);
    const rules = rulesFor(policy, "red", "mcp2", "run_docker");
    expect(decideRules(rules, input("run_docker", { command: "ps -a" }))).toEqual({
      allowed: true,
    });
    expect(decideRules(rules, input("run_docker", { command: "run busybox" }))).toEqual({
      allowed: false,
      reason: 'refused by rule "args.command.startsWith(\\"ps\\")"',
    });
    const battle = rulesFor(policy, "red", "mcp1", "report");
    const bound = { battles: ["b-1"] };
    expect(decideRules(battle, input("report", { battle_id: "b-1" }, bound)).allowed).toBe(true);
    expect(decideRules(battle, input("report", { battle_id: "b-2" }, bound)).allowed).toBe(false);
  });

  it("refuses a rule that does not compile, or a policy with rules read without a compiler", () => {
    const broken = { red: { mcp2: [{ tool: "echo", when: "args." }] } };
    const result = parsePolicy(JSON.stringify(broken), SERVERS, compileCondition);
    expect(result).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^POLICY\.red\.mcp2\[0\]\.when: /),
    });
    expect(hasRules(doc)).toBe(true);
    expect(hasRules({ a: { mcp1: "*" } })).toBe(false);
    expect(parsePolicy(JSON.stringify(doc), SERVERS)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/rules cannot be read here/),
    });
  });
});
