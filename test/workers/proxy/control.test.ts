/**
 * Run-time control inside workerd: the ControlStore Durable Object as the source of truth, the
 * admin API that changes it, and every isolate's copy picking changes up without a restart.
 */

import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { baseFor } from "../../../workers/proxy/src/pipeline.ts";
import { CONTROL_STORE_NAME } from "../../../workers/proxy/src/state/control-store.ts";
import { message, ORIGIN, post, rpc, token, toolNames } from "./client.ts";

const store = () => env.CONTROL.get(env.CONTROL.idFromName(CONTROL_STORE_NAME));

/** A request to the admin API as `agent` holding `scope`. */
async function adminRequest(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  scope = "admin",
): Promise<Response> {
  return exports.default.fetch(
    new Request(`${ORIGIN}/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await token("ops", { scope })}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
}

type PolicyDoc = Record<string, Record<string, "*" | string[]>>;

/** What the admin API and /healthz answer, as far as these tests read it. */
interface Answer {
  error?: string;
  message?: string;
  status?: string;
  versions?: { actor: string; action: string; changes: unknown[] }[];
  agents?: unknown[];
  backends?: { id: string; health: unknown }[];
  changes?: Record<string, { gained: string[]; lost: string[] }> | unknown[];
}

const read = (response: Response) => response.json() as Promise<Answer>;

async function currentPolicy(): Promise<{ version: string; policy: PolicyDoc }> {
  const response = await adminRequest("GET", "/policy");
  expect(response.status).toBe(200);
  return response.json();
}

/** Changes the policy with `edit`, re-reading it when another writer came first. */
async function editPolicy(edit: (policy: PolicyDoc) => void): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const { version, policy } = await currentPolicy();
    edit(policy);
    const response = await adminRequest(
      "PUT",
      "/policy",
      { policy },
      { "if-match": `"${version}"` },
    );
    if (response.status !== 412 || attempt === 5) return response;
  }
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, ms: number) {
  const began = Date.now();
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() - began > ms) return { value, ms: Date.now() - began };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("the admin API", () => {
  it("needs a token with the admin scope", async () => {
    expect(
      (await adminRequest("GET", "/policy", undefined, {}, "list_tools call_tools")).status,
    ).toBe(403);
    const anonymous = await exports.default.fetch(`${ORIGIN}/admin/policy`);
    expect(anonymous.status).toBe(401);
  });

  it("refuses a page from another origin, even with an admin token", async () => {
    const foreign = await adminRequest("GET", "/policy", undefined, {
      origin: "http://evil.example",
    });
    expect(foreign.status).toBe(403);
    const own = await adminRequest("GET", "/policy", undefined, { origin: ORIGIN });
    expect(own.status).toBe(200);
  });

  it("shows the policy the proxy was started with, under a version", async () => {
    const { version, policy } = await currentPolicy();
    expect(version).toMatch(/^\d+$/);
    expect(policy).toEqual(expect.objectContaining(JSON.parse(inject("policy"))));
  });

  it("refuses a policy that names an unknown server, saying where", async () => {
    const { version } = await currentPolicy();
    const response = await adminRequest(
      "PUT",
      "/policy",
      { policy: { red: { mcp9: "*" } } },
      { "if-match": version },
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: "invalid_document",
      message: expect.stringMatching(
        /policy grants agent "red" server "mcp9", which is not configured/,
      ),
    });
    const malformed = await adminRequest(
      "PUT",
      "/policy",
      { policy: { red: { mcp1: "all" } } },
      { "if-match": version },
    );
    expect(malformed.status).toBe(400);
    expect((await read(malformed)).message).toMatch(/policy is invalid at red\.mcp1/);
  });

  it("needs If-Match, and of two writers with the same one exactly one wins", async () => {
    const { version, policy } = await currentPolicy();
    const without = await adminRequest("PUT", "/policy", { policy });
    expect(without.status).toBe(428);
    const [a, b] = await Promise.all(
      ["ctl_writer_a", "ctl_writer_b"].map((agent) =>
        adminRequest(
          "PUT",
          "/policy",
          { policy: { ...policy, [agent]: { mcp1: ["echo"] } } },
          { "if-match": `"${version}"` },
        ),
      ),
    );
    expect([a?.status, b?.status].sort()).toEqual([200, 412]);
    const loser = a?.status === 412 ? a : b;
    expect(loser && (await read(loser)).error).toBe("version_mismatch");
  });

  it("gives an agent a tool while it is connected: its next tools/list shows it", async () => {
    expect(await toolNames("ctl_live")).toEqual([]);
    const response = await editPolicy((policy) => {
      policy.ctl_live = { mcp1: ["echo"] };
    });
    expect(response.status).toBe(200);
    expect(await toolNames("ctl_live")).toEqual(["mcp1_echo"]);
  });

  it("dry-runs a change: nothing changes, and the apply then does exactly what it said", async () => {
    const { version, policy } = await currentPolicy();
    const next = {
      ...policy,
      ctl_dry: { mcp1: ["echo", "report_on_battle_start"], mcp3: "*" as const },
    };
    const before = await toolNames("ctl_dry");
    const dry = await adminRequest(
      "PUT",
      "/policy?dry_run=1",
      { policy: next },
      { "if-match": version },
    );
    expect(dry.status).toBe(200);
    const { changes } = (await dry.json()) as {
      changes: Record<string, { gained: string[]; lost: string[] }>;
    };
    expect(Object.keys(changes)).toEqual(["ctl_dry"]);
    expect(changes.ctl_dry?.gained).toEqual(
      expect.arrayContaining(["mcp1_echo", "mcp3_run_python_code"]),
    );
    expect(changes.ctl_dry?.lost).toEqual([]);
    expect(await toolNames("ctl_dry")).toEqual(before);
    expect((await currentPolicy()).version).toBe(version);

    const applied = await adminRequest("PUT", "/policy", { policy: next }, { "if-match": version });
    expect(applied.status).toBe(200);
    const after = await toolNames("ctl_dry");
    const gainedTools = after.filter((name) => !before.includes(name)).sort();
    const predicted = (changes.ctl_dry?.gained ?? [])
      .filter((name) => !name.includes("://"))
      .sort();
    // Resources and prompts are in the prediction too; the tools among them are what tools/list shows.
    expect(gainedTools).toEqual(predicted.filter((name) => after.includes(name)));
    expect(gainedTools.length).toBeGreaterThan(0);
  });

  it("keeps a history with who and what, and rolls back to an earlier version", async () => {
    await editPolicy((policy) => {
      policy.ctl_history = { mcp1: ["echo"] };
    });
    const { version: withGrant } = await currentPolicy();
    await editPolicy((policy) => {
      policy.ctl_history = { mcp3: "*" };
    });
    const history = await read(await adminRequest("GET", "/policy/history?limit=5"));
    const newest = history.versions?.[0];
    expect(newest).toMatchObject({ actor: "ops", action: "policy.put" });
    expect(newest?.changes).toContainEqual({ path: "policy.ctl_history.mcp1", before: ["echo"] });
    expect(newest?.changes).toContainEqual({ path: "policy.ctl_history.mcp3", after: "*" });

    const { version } = await currentPolicy();
    const rolled = await adminRequest(
      "POST",
      "/policy/rollback",
      { to: withGrant },
      { "if-match": version },
    );
    expect(rolled.status).toBe(200);
    expect((await currentPolicy()).policy.ctl_history).toEqual({ mcp1: ["echo"] });
    expect(await toolNames("ctl_history")).toEqual(["mcp1_echo"]);
  });
});

describe("agents and revocations", () => {
  it("disables an agent (401 on its next request) and enables it again", async () => {
    expect(await toolNames("agent_name1")).not.toEqual([]);
    const disabled = await adminRequest("POST", "/agents/agent_name1/disable", {
      note: "leaked key",
    });
    expect(disabled.status).toBe(200);
    const refused = await post(rpc("tools/list"), await token("agent_name1"));
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    const agents = await read(await adminRequest("GET", "/agents"));
    expect(agents.agents).toContainEqual(
      expect.objectContaining({ id: "agent_name1", enabled: false, note: "leaked key" }),
    );
    expect((await adminRequest("POST", "/agents/agent_name1/enable")).status).toBe(200);
    expect(await toolNames("agent_name1")).not.toEqual([]);
    // Enabling it again changes nothing, and makes no version.
    const again = await read(await adminRequest("POST", "/agents/agent_name1/enable"));
    expect(again.changes).toEqual([]);
  });

  it("revokes one token by jti, leaving the agent's other tokens working", async () => {
    const revoked = await token("agent_name2", { jti: "ctl-revoked-1" });
    const other = await token("agent_name2", { jti: "ctl-kept-1" });
    expect((await post(rpc("tools/list"), revoked)).status).toBe(200);
    expect((await adminRequest("POST", "/revocations", { jti: "ctl-revoked-1" })).status).toBe(201);
    expect((await post(rpc("tools/list"), revoked)).status).toBe(401);
    expect((await post(rpc("tools/list"), other)).status).toBe(200);
  });

  it("revokes every token of an agent issued before a time; newer ones work", async () => {
    const old = await token("batcher", { iat: Math.floor(Date.now() / 1000) - 30 });
    const now = Math.floor(Date.now() / 1000);
    expect(
      (await adminRequest("POST", "/revocations", { agent: "batcher", before: now - 10 })).status,
    ).toBe(201);
    expect((await post(rpc("tools/list"), old)).status).toBe(401);
    expect((await post(rpc("tools/list"), await token("batcher"))).status).toBe(200);
  });
});

describe("backends", () => {
  it("lists the backends with their health", async () => {
    const { backends = [] } = await read(await adminRequest("GET", "/backends"));
    const byId = Object.fromEntries(backends.map((b) => [b.id, b]));
    expect(byId.mcp1?.health).toMatchObject({ ok: true });
    expect(byId.mcp2?.health).toMatchObject({ ok: false });
  });

  it("adds a backend only after it answers a probe, and removes one nobody is granted", async () => {
    const dead = await adminRequest("POST", "/backends", { id: "ctlgone", url: inject("deadUrl") });
    expect(dead.status).toBe(422);
    expect((await read(dead)).message).toMatch(/ctlgone did not answer a health probe/);

    const url = `${inject("thirdPartyUrl")}/mcp`;
    expect((await adminRequest("POST", "/backends", { id: "ctlext", url })).status).toBe(201);
    await editPolicy((policy) => {
      policy.ctl_ext = { ctlext: ["echo"] };
    });
    expect(await toolNames("ctl_ext")).toEqual(["ctlext_echo"]);

    const busy = await adminRequest("DELETE", "/backends/ctlext");
    expect(busy.status).toBe(409);
    expect((await read(busy)).message).toMatch(/granted to ctl_ext/);
    await editPolicy((policy) => {
      delete policy.ctl_ext;
    });
    expect((await adminRequest("DELETE", "/backends/ctlext")).status).toBe(200);
  });
});

describe("every isolate's copy", () => {
  it("picks up a change made elsewhere within two seconds, with no restart", async () => {
    // Changed in the store directly, as another isolate's admin request would: this isolate's copy
    // learns of it only by checking.
    expect(await toolNames("ctl_elsewhere")).toEqual([]);
    const { seed } = await baseFor(env);
    const latest = await store().current(seed);
    const policy = { ...latest.document.policy, ctl_elsewhere: { mcp1: ["echo"] } };
    const changed = await store().putPolicy(seed, "test", latest.policyVersion, policy);
    expect(changed.ok).toBe(true);
    const seen = await until(
      () => toolNames("ctl_elsewhere"),
      (names) => names.length > 0,
      4_000,
    );
    expect(seen.value).toEqual(["mcp1_echo"]);
    expect(seen.ms).toBeLessThan(2_000);
  });

  it("keeps serving the last version when the store cannot be reached, and says so", async () => {
    expect(await toolNames("agent_name1")).not.toEqual([]);
    // The store is kept busy (as by a long migration): nothing reaches it for four seconds.
    const blocked = runInDurableObject(store(), (_instance, state) =>
      state.blockConcurrencyWhile(() => new Promise((resolve) => setTimeout(resolve, 4_000))),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_700));
    expect(await toolNames("agent_name1")).not.toEqual([]);
    const health = await until(
      async () => read(await exports.default.fetch(`${ORIGIN}/healthz`)),
      (body) => body.status === "degraded",
      2_000,
    );
    expect(health.value).toMatchObject({
      status: "degraded",
      control: { unreachable: { error: expect.any(String) } },
    });
    await blocked;
    const back = await until(
      async () => read(await exports.default.fetch(`${ORIGIN}/healthz`)),
      (body) => body.status === "ok",
      3_000,
    );
    expect(back.value.status).toBe("ok");
  });
});

describe("rules on grants", () => {
  const rule =
    'args.message.startsWith("ok") || ("phrases" in claims && args.message in claims.phrases)';

  it("shows a tool under a rule, refuses the calls the rule refuses and runs the others", async () => {
    const response = await editPolicy((policy) => {
      (policy as Record<string, unknown>).ctl_rule = { mcp1: [{ tool: "echo", when: rule }] };
    });
    expect(response.status).toBe(200);
    expect(await toolNames("ctl_rule")).toEqual(["mcp1_echo"]);

    const ask = async (text: string, claims: Record<string, unknown> = {}) => {
      const call = rpc("tools/call", { name: "mcp1_echo", arguments: { message: text } });
      const reply = await message(await post(call, await token("ctl_rule", claims)));
      return reply as { result?: { isError?: boolean; content: { text: string }[] } };
    };

    const allowed = await ask("ok, go");
    expect(allowed.result?.isError).toBeFalsy();
    expect(allowed.result?.content[0]?.text).toMatch(/ok, go/);

    const refused = await ask("rm -rf");
    expect(refused.result?.isError).toBe(true);
    expect(refused.result?.content[0]?.text).toBe(
      `Refused by policy: refused by rule ${JSON.stringify(rule)}`,
    );
    // The token's claims are the rule's too: a phrase the token lists passes.
    expect((await ask("rm -rf", { phrases: ["rm -rf"] })).result?.isError).toBeFalsy();
  });

  it("refuses at a door the same call the rule refuses on /mcp", async () => {
    await editPolicy((policy) => {
      (policy as Record<string, unknown>).ctl_rule = { mcp1: [{ tool: "echo", when: rule }] };
    });
    const bearer = await token("ctl_rule");
    const refused = await (
      await exports.default.fetch(
        new Request(`${ORIGIN}/servers/mcp1/mcp`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            authorization: `Bearer ${bearer}`,
          },
          body: JSON.stringify(rpc("tools/call", { name: "echo", arguments: { message: "nope" } })),
        }),
      )
    ).text();
    expect(refused).toContain(
      JSON.stringify(`Refused by policy: refused by rule ${JSON.stringify(rule)}`),
    );
  });

  it("refuses a rule that does not compile, naming where it is", async () => {
    const response = await editPolicy((policy) => {
      (policy as Record<string, unknown>).ctl_bad = {
        mcp1: ["echo", { tool: "echo", when: "args.message.startsWith(" }],
      };
    });
    expect(response.status).toBe(400);
    expect((await read(response)).message).toMatch(/^policy\.ctl_bad\.mcp1\[1\]\.when: /);
  });
});
