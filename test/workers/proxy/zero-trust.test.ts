/**
 * Hostile-input suites against the proxy inside workerd: forged and malformed tokens, hostile tool
 * names, oversized and deep bodies, rate and concurrency limits, the audit trail, and ten thousand
 * generated bodies. mcp3 sits behind a counting relay, so "nothing reached a backend" is a measured
 * fact, not an assumption.
 */
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { base64url, SignJWT } from "jose";
import { describe, expect, inject, it } from "vitest";
import { call, foreignRsaKey, ORIGIN, post, rpc, testKid, token } from "./client.ts";

async function backendHits(): Promise<number> {
  const response = await fetch(`${inject("mcp3Spy")}/__count`);
  return ((await response.json()) as { count: number }).count;
}

const echo = (message: string) => rpc("tools/call", { name: "mcp3_echo", arguments: { message } });

/** Base64url JSON of a JWT part. */
const part = (value: object) => base64url.encode(JSON.stringify(value));
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: "agent_name1",
  iss: "https://mcpcp",
  aud: "mcpcp-server",
  exp: now() + 300,
  scope: "list_tools call_tools",
  ...extra,
});

describe("hostile tokens: each refused, nothing reaches a backend", () => {
  type Case = [string, () => Promise<{ headers: Record<string, string>; url?: string }>, number];
  const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
  const cases: Case[] = [
    [
      "alg none",
      async () => bearer(`${part({ alg: "none", kid: testKid() })}.${part(claims())}.`),
      401,
    ],
    [
      "HS256 keyed with the public JWKS",
      async () => {
        const secret = new TextEncoder().encode(inject("agentJwks"));
        return bearer(
          await new SignJWT(claims())
            .setProtectedHeader({ alg: "HS256", kid: testKid() })
            .sign(secret),
        );
      },
      401,
    ],
    [
      "RS256 by an unknown key under the trusted kid",
      async () =>
        bearer(
          await new SignJWT(claims())
            .setProtectedHeader({ alg: "RS256", kid: testKid() })
            .sign(await foreignRsaKey()),
        ),
      401,
    ],
    [
      "kid pointing at a key the proxy does not hold",
      async () =>
        bearer(
          await new SignJWT(claims())
            .setProtectedHeader({ alg: "RS256", kid: "elsewhere" })
            .sign(await foreignRsaKey()),
        ),
      401,
    ],
    [
      "kid carrying an injection",
      async () =>
        bearer(
          await new SignJWT(claims())
            .setProtectedHeader({ alg: "RS256", kid: "../../keys/private.pem' OR '1'='1" })
            .sign(await foreignRsaKey()),
        ),
      401,
    ],
    [
      "an embedded jwk header naming its own key",
      async () => {
        const tokenText = await token("agent_name1");
        const [, payload, signature] = tokenText.split(".");
        const header = part({
          alg: "RS256",
          kid: testKid(),
          jwk: { kty: "RSA", n: "AQAB", e: "AQAB" },
        });
        return bearer(`${header}.${payload}.${signature}`);
      },
      401,
    ],
    ["expired", async () => bearer(await token("agent_name1", { exp: now() - 120 })), 401],
    [
      "nbf in the future",
      async () => bearer(await token("agent_name1", { nbf: now() + 600 })),
      401,
    ],
    ["wrong iss", async () => bearer(await token("agent_name1", { iss: "https://evil" })), 401],
    ["wrong aud", async () => bearer(await token("agent_name1", { aud: "someone-else" })), 401],
    ["no exp", async () => bearer(await token("agent_name1", { exp: undefined })), 401],
    ["no sub", async () => bearer(await token("agent_name1", { sub: undefined })), 401],
    [
      "call_tools scope missing",
      async () => bearer(await token("agent_name1", { scope: "list_tools" })),
      403,
    ],
    [
      "token in the query string",
      async () => ({
        headers: {},
        url: `${ORIGIN}/mcp?access_token=${await token("agent_name1")}`,
      }),
      401,
    ],
    [
      "two Authorization headers",
      async () => {
        const t = await token("agent_name1");
        return { headers: { authorization: `Bearer ${t}, Bearer ${t}` } };
      },
      401,
    ],
    ["truncated signature", async () => bearer((await token("agent_name1")).slice(0, -10)), 401],
    ["padded signature", async () => bearer(`${await token("agent_name1")}AAAA`), 401],
    [
      "Basic instead of Bearer",
      async () => ({ headers: { authorization: "Basic YWdlbnQ6cGFzcw==" } }),
      401,
    ],
  ];

  it.each(cases)("%s → %i", async (_name, make, status) => {
    const before = await backendHits();
    const { headers, url } = await make();
    const response = await exports.default.fetch(
      new Request(url ?? `${ORIGIN}/mcp`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers,
        },
        body: JSON.stringify(echo("should never arrive")),
      }),
    );
    expect(response.status).toBe(status);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer error="/);
    expect(await backendHits()).toBe(before);
  });

  it("a valid token for an agent outside the policy reaches nothing either", async () => {
    const before = await backendHits();
    const reply = await call("stranger", "mcp3_echo", { message: "x" });
    expect(reply.error).toEqual({ code: -32602, message: "Tool mcp3_echo not found" });
    expect(await backendHits()).toBe(before);
  });

  it("(control) a valid call does reach the backend, so the counter can tell", async () => {
    const before = await backendHits();
    expect(
      (await call("agent_name1", "mcp3_echo", { message: "hello" })).result?.content[0]?.text,
    ).toBe("Echo: hello");
    expect(await backendHits()).toBeGreaterThan(before);
  });
});

describe("hostile tool names: each answered exactly like an unknown tool", () => {
  const names = [
    "MCP1_echo",
    "mcp1__echo",
    "mcp1_",
    "_echo",
    "mcp9_echo",
    "m\u0441p1_echo", // Cyrillic es
    "mcp1_\uff45cho", // fullwidth e
    "mcp1_echo\u200b", // zero-width space
    "mcp1_../echo",
    "mcp1_echo/../../etc",
    "mcp1_a/b",
    "mcp1_echo\u0000",
    "",
  ];
  it.each(names)("%j", async (name) => {
    const reply = await call("agent_name1", name, { message: "x" });
    expect(reply.error).toEqual({ code: -32602, message: `Tool ${name} not found` });
  });
});

describe("body limits", () => {
  it("refuses JSON nested deeper than 64 levels with 400 invalid request", async () => {
    let deep: unknown = "x";
    for (let i = 0; i < 100; i++) deep = [deep];
    const response = await post(
      rpc("tools/call", { name: "mcp3_echo", arguments: { message: "x", deep } }),
      await token("agent_name1"),
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { code: -32600, message: expect.stringContaining("deeper") },
    });
  });

  it("refuses a single string over 1 MiB with 400", async () => {
    const response = await post(echo("x".repeat(1_048_577)), await token("agent_name1"));
    expect(response.status).toBe(400);
  });

  it("refuses a batch of more than 32 messages", async () => {
    const batch = Array.from({ length: 33 }, () => rpc("ping"));
    expect((await post(batch, await token("agent_name1"))).status).toBe(400);
  });

  it("refuses a batch whose requests share an id, before any of it runs", async () => {
    const batch = (second: number | string) => [
      { ...echo("first"), id: 7 },
      { ...echo("second"), id: second },
    ];
    const bearer = await token("batcher");
    // 2025-03-26 is the era with batches.
    const era = { "mcp-protocol-version": "2025-03-26" };
    for (const repeated of [7, "7"]) {
      const before = await backendHits();
      const response = await post(batch(repeated), bearer, era);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        jsonrpc: "2.0",
        id: null,
        error: {
          code: -32600,
          message: "Invalid request: the requests of a batch must have distinct ids",
        },
      });
      expect(await backendHits()).toBe(before);
    }
    // (control) with distinct ids both calls run, and both are answered.
    const before = await backendHits();
    const response = await post(batch(8), bearer, era);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain("Echo: first");
    expect(text).toContain("Echo: second");
    expect(await backendHits()).toBeGreaterThan(before);
  }, 20_000);
});

describe("rate limits", () => {
  it("limits a rate-limited tool per agent with 429, Retry-After and a JSON-RPC error", async () => {
    const agentToken = await token("agent_name2");
    let refused: Response | undefined;
    // The limiter counts in fixed 60 s windows: past 2 × 60 calls, one window must overflow even if
    // a window boundary falls in the middle of the loop.
    for (let i = 0; i < 125 && !refused; i++) {
      const response = await post(echo(`n${i}`), agentToken);
      if (response.status === 429) refused = response;
      else await response.body?.cancel();
    }
    expect(refused?.status).toBe(429);
    // Retry-After says when the tool's window ends: within the minute, and the same in the body.
    const wait = Number(refused?.headers.get("retry-after"));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
    expect(await refused?.json()).toMatchObject({
      jsonrpc: "2.0",
      error: {
        code: -32029,
        message: expect.stringMatching(
          new RegExp(`over its rate for mcp3_echo; retry after ${wait} s`),
        ),
      },
    });
    // Other tools of the same agent are not held back by that tool's limit.
    expect((await post(rpc("tools/list"), agentToken)).status).toBe(200);
  }, 60_000);

  it("limits every request of an agent past 600 a minute", async () => {
    const flooder = await token("flooder", { scope: "list_tools" });
    let status = 0;
    // More than twice the limit, for the same reason as above.
    for (let i = 0; i < 1250 && status !== 429; i++) {
      const response = await post(rpc("ping"), flooder);
      status = response.status;
      await response.body?.cancel();
    }
    expect(status).toBe(429);
  }, 60_000);
});

describe("concurrent calls per agent", () => {
  it("refuses a call while the agent holds all its slots, and admits it once one frees", async () => {
    const gate = env.AGENT_GATE.get(env.AGENT_GATE.idFromName("agent_name1"));
    const held = await gate.admit({
      rate: { limit: 1e9, windowMs: 60_000 },
      toolRate: { limit: 1e9, windowMs: 60_000 },
      calls: Array.from({ length: 8 }, () => ({})),
      maxInFlight: 8,
      leaseMs: 60_000,
    });
    const leases = held.ok ? held.leases : [];
    expect(leases).toHaveLength(8);
    const refused = await post(echo("busy"), await token("agent_name1"));
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({
      error: { message: expect.stringContaining("8 calls in flight") },
    });

    await gate.release([leases.pop() as string]);
    const admitted = await post(echo("free"), await token("agent_name1"));
    expect(admitted.status).toBe(200);
    await admitted.body?.cancel();
    await gate.release(leases);
  });
});

describe("the agent's gate", () => {
  it("never runs out of slots over many sequential calls", async () => {
    // Slots go back with the agent's next admission, or after RELEASE_AFTER_MS on their own:
    // either way, back-to-back calls well past the cap of 8 are all admitted.
    const bearer = await token("agent_name1");
    for (let i = 0; i < 20; i++) {
      const response = await post(
        rpc("tools/call", { name: "mcp1_echo", arguments: { message: `n${i}` } }),
        bearer,
      );
      expect(response.status).toBe(200);
      await response.text();
    }
  });

  it("admits all of a request's calls or none, and says when a window ends", async () => {
    const gate = env.AGENT_GATE.get(env.AGENT_GATE.idFromName(`gate-${crypto.randomUUID()}`));
    const limits = {
      rate: { limit: 3, windowMs: 60_000 },
      toolRate: { limit: 1, windowMs: 60_000 },
      maxInFlight: 2,
      leaseMs: 60_000,
    };
    const both = await gate.admit({ ...limits, calls: [{}, {}] });
    expect(both).toMatchObject({ ok: true, leases: [expect.any(String), expect.any(String)] });
    expect(await gate.admit({ ...limits, calls: [{}] })).toMatchObject({
      ok: false,
      refusal: "concurrency",
      inFlight: 2,
    });
    await gate.release(both.ok ? both.leases : []);
    // The second call to a tool limited to one a minute is refused, and the first holds no slot.
    expect(
      await gate.admit({ ...limits, calls: [{ limitedTool: "x" }, { limitedTool: "x" }] }),
    ).toMatchObject({ ok: false, refusal: "tool_rate", tool: "x" });
    // The fourth request of a minute is over the agent's rate of three.
    const over = await gate.admit({ ...limits, calls: [] });
    expect(over).toMatchObject({ ok: false, refusal: "rate" });
    const wait = over.ok ? 0 : over.retryAfterSeconds;
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(60);
  });
});

describe("audit", () => {
  async function audit(query: string, scope = "audit_read") {
    return exports.default.fetch(
      new Request(`${ORIGIN}/admin/audit?${query}`, {
        headers: { authorization: `Bearer ${await token("operator", { scope })}` },
      }),
    );
  }

  it("records each authenticated request, findable by agent and tool, without arguments or tokens", async () => {
    const secret = `s3cret-${crypto.randomUUID()}`;
    const agentToken = await token("auditee");
    await (await post(echo(secret), agentToken)).text(); // outside auditee's policy: denied
    const agent1 = await token("agent_name1");
    const response = await post(
      rpc("tools/call", { name: "mcp1_echo", arguments: { message: secret } }),
      agent1,
    );
    const requestId = response.headers.get("mcpcp-request-id");
    await response.text();

    await expect
      .poll(
        async () =>
          (
            (await (await audit(`agent=agent_name1&tool=echo&limit=50`)).json()) as {
              records: { request_id: string }[];
            }
          ).records.map((r) => r.request_id),
        { timeout: 5000 },
      )
      .toContain(requestId);
    const body = (await (await audit("agent=agent_name1&limit=200")).json()) as {
      records: Record<string, unknown>[];
    };
    const mine = body.records.find((r) => r.request_id === requestId);
    expect(mine).toMatchObject({
      agent: "agent_name1",
      method: "tools/call",
      server: "mcp1",
      tool: "echo",
      decision: "allow",
      outcome: "ok",
      status: 200,
      message_index: null,
      bytes_in: expect.any(Number),
      bytes_out: expect.any(Number),
      duration_ms: expect.any(Number),
    });
    const denied = (
      (await (await audit("agent=auditee")).json()) as { records: Record<string, unknown>[] }
    ).records;
    // A refused call keeps the name the agent asked for.
    expect(denied[0]).toMatchObject({
      method: "tools/call",
      server: "mcp3",
      tool: "echo",
      decision: "deny_policy",
      outcome: "rpc_error",
    });
    const everything = JSON.stringify(body) + JSON.stringify(denied);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(agent1);
  });

  /** The records of the request `response` answers, once `count` of them are stored. */
  async function recordsOf(response: Response, count = 1): Promise<Record<string, unknown>[]> {
    const requestId = response.headers.get("mcpcp-request-id") ?? "";
    await response.text();
    let records: Record<string, unknown>[] = [];
    await expect
      .poll(
        async () => {
          const found = (await (await audit(`request_id=${requestId}`)).json()) as {
            records: Record<string, unknown>[];
          };
          records = found.records;
          return records.length;
        },
        { timeout: 5000 },
      )
      .toBeGreaterThanOrEqual(count);
    return records;
  }

  it("gives each message of a batch its own record, under the request's id", async () => {
    const secret = `s3cret-${crypto.randomUUID()}`;
    const call = (id: number, name: string, args: object) => ({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name, arguments: args },
    });
    const response = await post(
      [
        call(1, "mcp1_report_on_battle_end", {}), // breaks the tool's schema: a tool error
        call(2, "mcp1_echo", { message: secret }),
        call(3, "mcp1_echo", { message: secret }),
        call(4, "mcp2_echo", { message: secret }), // outside batcher's policy
        { jsonrpc: "2.0", id: 5, method: "\u001b[2J rm -rf /" },
        { jsonrpc: "2.0", method: "notifications/initialized" },
      ],
      await token("batcher"),
      { "mcp-protocol-version": "2025-03-26" },
    );
    expect(response.status).toBe(200);
    const records = await recordsOf(response, 6);
    const shared = {
      request_id: response.headers.get("mcpcp-request-id"),
      agent: "batcher",
      status: 200,
    };
    expect(records).toEqual([
      expect.objectContaining({
        ...shared,
        message_index: 0,
        method: "tools/call",
        server: "mcp1",
        tool: "report_on_battle_end",
        decision: "allow",
        outcome: "tool_error",
      }),
      ...[1, 2].map((index) =>
        expect.objectContaining({
          ...shared,
          message_index: index,
          method: "tools/call",
          server: "mcp1",
          tool: "echo",
          decision: "allow",
          outcome: "ok",
        }),
      ),
      expect.objectContaining({
        ...shared,
        message_index: 3,
        method: "tools/call",
        server: "mcp2",
        tool: "echo",
        decision: "deny_policy",
        outcome: "rpc_error",
      }),
      // The agent's own method string is never written down.
      expect.objectContaining({ ...shared, message_index: 4, method: "unknown", tool: null }),
      expect.objectContaining({
        ...shared,
        message_index: 5,
        method: "notifications/initialized",
      }),
    ]);
    expect(JSON.stringify(records)).not.toContain(secret);
  });

  it("gives a request refused whole a record for each of its messages, naming what it asked for", async () => {
    const response = await post(
      rpc("tools/call", { name: "mcp1_echo", arguments: { message: "x" } }),
      await token("agent_name1", { scope: "list_tools" }),
    );
    expect(response.status).toBe(403);
    expect(await recordsOf(response)).toEqual([
      expect.objectContaining({
        message_index: null,
        method: "tools/call",
        server: "mcp1",
        tool: "echo",
        decision: "deny_scope",
        outcome: "http_403",
      }),
    ]);

    // A batch refused for its scope: the refusal is on each message's record.
    const lister = await token("batcher", { scope: "list_tools" });
    const era = { "mcp-protocol-version": "2025-03-26" };
    const batch = await post([rpc("tools/list"), echo("x")], lister, era);
    expect(batch.status).toBe(403);
    expect(await recordsOf(batch, 2)).toEqual([
      expect.objectContaining({ message_index: 0, method: "tools/list", decision: "deny_scope" }),
      expect.objectContaining({
        message_index: 1,
        method: "tools/call",
        server: "mcp3",
        tool: "echo",
        decision: "deny_scope",
      }),
    ]);
    // A batch refused as a body (its ids repeat) is one record, for the batch.
    const repeated = await post(
      [
        { ...echo("a"), id: 3 },
        { ...echo("b"), id: 3 },
      ],
      lister,
      era,
    );
    expect(repeated.status).toBe(400);
    expect(await recordsOf(repeated)).toEqual([
      expect.objectContaining({
        message_index: null,
        method: "batch",
        tool: null,
        decision: "deny_input",
        outcome: "http_400",
      }),
    ]);
  });

  it("gives each message of a batch through a door its own record", async () => {
    const echoAt = (id: number) => ({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "echo", arguments: { message: `door ${id}` } },
    });
    const response = await exports.default.fetch(
      new Request(`${ORIGIN}/servers/mcp1/mcp`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2025-03-26",
          authorization: `Bearer ${await token("narrow")}`,
        },
        body: JSON.stringify([echoAt(1), echoAt(2)]),
      }),
    );
    expect(response.status).toBe(200);
    const records = await recordsOf(response, 2);
    expect(records).toEqual(
      [0, 1].map((index) =>
        expect.objectContaining({
          message_index: index,
          agent: "narrow",
          method: "tools/call",
          server: "mcp1",
          tool: "echo",
          decision: "allow",
        }),
      ),
    );
  });

  it("needs the audit_read scope", async () => {
    expect((await audit("agent=agent_name1", "list_tools call_tools")).status).toBe(403);
    const anonymous = await exports.default.fetch(`${ORIGIN}/admin/audit`);
    expect(anonymous.status).toBe(401);
  });

  it("opens to the admin scope too, which may change everything the log records", async () => {
    const response = await audit("agent=agent_name1&limit=1", "admin");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ records: expect.any(Array) });
  });

  it("refuses a malformed query with 400", async () => {
    expect((await audit("since=yesterday")).status).toBe(400);
    expect((await audit("limit=100000")).status).toBe(400);
  });
});

describe("fuzz: generated bodies never get a 500", () => {
  // Fixed seed, so a failure names the body that caused it and reproduces.
  const SEED = 20261125;
  const RUNS = 10_000;

  const bodies = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.json({ maxDepth: 6 }),
    fc
      .record(
        {
          jsonrpc: fc.oneof(fc.constant("2.0"), fc.string({ maxLength: 5 })),
          id: fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.constant(null), fc.object()),
          method: fc.oneof(
            fc.constantFrom(
              "tools/list",
              "tools/call",
              "initialize",
              "ping",
              "notifications/initialized",
              "resources/list",
              "server/discover",
            ),
            fc.string({ maxLength: 30 }),
          ),
          params: fc.oneof(
            fc.object({ maxDepth: 3 }),
            fc.array(fc.anything(), { maxLength: 3 }),
            fc.string(),
            fc.constant(null),
          ),
        },
        { requiredKeys: [] },
      )
      .map((value) => JSON.stringify(value)),
  );

  it(`${RUNS} bodies from seed ${SEED}: well-formed answers, then a valid call still works`, async () => {
    // A fresh agent every 400 bodies keeps the fuzzer under the per-agent rate limit.
    let current = "";
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(bodies, async (text) => {
        if (runs++ % 400 === 0) current = await token(`fuzzer-${runs}`);
        const response = await post(text, current);
        const answer = await response.text();
        expect(response.status).not.toBe(500);
        expect([200, 202, 400, 403, 404, 405, 406, 413, 415]).toContain(response.status);
        if (answer !== "") {
          const parsed = response.headers.get("content-type")?.includes("text/event-stream")
            ? JSON.parse(
                answer
                  .split("\n")
                  .find((l) => l.startsWith("data: "))
                  ?.slice(6) ?? "null",
              )
            : JSON.parse(answer);
          const replies = Array.isArray(parsed) ? parsed : [parsed];
          for (const reply of replies) {
            expect(reply.jsonrpc).toBe("2.0");
            expect("result" in reply || typeof reply.error?.code === "number").toBe(true);
          }
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(
      (await call("agent_name1", "mcp1_echo", { message: "still here" })).result?.content[0]?.text,
    ).toBe("Echo: still here");
  }, 300_000);
});
