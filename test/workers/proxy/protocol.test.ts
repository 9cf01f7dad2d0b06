/**
 * Protocol conformance inside workerd: both eras answered per request with the status codes,
 * headers and bodies the specs require; streaming of progress and log messages; cancellation;
 * resources and prompts aggregated; a third-party stateful backend whose session the proxy keeps.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { call, LEGACY_VERSION, message, ORIGIN, post, rpc, token } from "./client.ts";

const MODERN = "2026-07-28";

function envelope() {
  return {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": { name: "conformance", version: "1" },
    "io.modelcontextprotocol/clientCapabilities": {},
  };
}

/** A 2026-07-28 request: envelope in `_meta`, method (and name) mirrored in headers. */
async function modern(
  method: string,
  params: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const name: Record<string, string> =
    typeof params.name === "string" ? { "mcp-name": params.name } : {};
  return post(
    { jsonrpc: "2.0", id: 7, method, params: { ...params, _meta: envelope() } },
    await token("agent_name1"),
    { "mcp-protocol-version": MODERN, "mcp-method": method, ...name, ...headers },
  );
}

describe("2026-07-28 (stateless) era", () => {
  it("answers server/discover with the revisions and capabilities it serves", async () => {
    const response = await modern("server/discover");
    expect(response.status).toBe(200);
    const reply = (await response.json()) as { id: number; result: Record<string, unknown> };
    expect(reply.id).toBe(7);
    expect(reply.result.supportedVersions).toContain(MODERN);
    expect(reply.result.capabilities).toMatchObject({ tools: {}, resources: {}, prompts: {} });
    expect(reply.result.resultType).toBe("complete");
  });

  it("serves tools/list and tools/call with resultType and no session", async () => {
    const list = await modern("tools/list");
    expect(list.status).toBe(200);
    expect(list.headers.get("mcp-session-id")).toBeNull();
    const listed = (await message(list)) as {
      result?: { tools: { name: string }[]; resultType?: string };
    };
    expect(listed.result?.resultType).toBe("complete");
    expect(listed.result?.tools.map((t) => t.name)).toContain("mcp1_echo");

    const called = await message(
      await modern("tools/call", { name: "mcp1_echo", arguments: { message: "m" } }),
    );
    expect(called.result).toMatchObject({
      content: [{ type: "text", text: "Echo: m" }],
      resultType: "complete",
    });
  });

  it("rejects a Mcp-Method header that contradicts the body", async () => {
    const response = await modern("tools/list", {}, { "mcp-method": "tools/call" });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32020);
  });

  it("rejects a modern version header on a request without the envelope", async () => {
    const response = await post(rpc("tools/list"), await token("agent_name1"), {
      "mcp-protocol-version": MODERN,
      "mcp-method": "tools/list",
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32602);
  });

  it("answers GET and DELETE on /mcp with 405", async () => {
    for (const method of ["GET", "DELETE"]) {
      const response = await exports.default.fetch(
        new Request(`${ORIGIN}/mcp`, {
          method,
          headers: {
            accept: "text/event-stream",
            "mcp-protocol-version": MODERN,
            authorization: `Bearer ${await token("agent_name1")}`,
          },
        }),
      );
      expect(response.status).toBe(405);
    }
  });
});

describe("2025 era (initialize, then requests)", () => {
  const initialize = (version: string) =>
    rpc("initialize", {
      protocolVersion: version,
      capabilities: {},
      clientInfo: { name: "c", version: "1" },
    });

  it("negotiates the client's version and issues no session id (stateless)", async () => {
    for (const version of ["2025-11-25", "2025-06-18", "2025-03-26"]) {
      const response = await post(initialize(version), await token("agent_name1"), {
        "mcp-protocol-version": "",
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("mcp-session-id")).toBeNull();
      const reply = await message(response);
      expect(reply.result).toMatchObject({
        protocolVersion: version,
        serverInfo: { name: "mcpcp" },
      });
    }
  });

  it("acknowledges notifications with 202 and no body", async () => {
    const response = await post(
      { jsonrpc: "2.0", method: "notifications/initialized" },
      await token("agent_name1"),
    );
    expect(response.status).toBe(202);
    expect(await response.text()).toBe("");
  });

  it("rejects an unsupported MCP-Protocol-Version with 400", async () => {
    const response = await post(rpc("tools/list"), await token("agent_name1"), {
      "mcp-protocol-version": "1999-01-01",
    });
    expect(response.status).toBe(400);
  });

  it("requires Accept to offer both JSON and SSE (406) and a JSON body (415)", async () => {
    const bearer = await token("agent_name1");
    expect((await post(rpc("tools/list"), bearer, { accept: "text/html" })).status).toBe(406);
    expect((await post(rpc("tools/list"), bearer, { "content-type": "text/plain" })).status).toBe(
      415,
    );
  });
});

/** Reads SSE events from a streaming answer one at a time. */
function sseEvents(response: Response) {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async next(): Promise<
      { method?: string; params?: Record<string, unknown>; result?: unknown } | undefined
    > {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event.split("\n").find((line) => line.startsWith("data: "));
          if (data) return JSON.parse(data.slice(6));
          continue;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

async function thirdParty(path: string, init?: RequestInit): Promise<Response> {
  return fetch(`${inject("thirdPartyUrl")}${path}`, init);
}

async function labelState(label: string): Promise<string | undefined> {
  const state = (await (await thirdParty("/__state")).json()) as { labels: Record<string, string> };
  return state.labels[label];
}

/** A tools/call as an agent of `era` sends it: 2025-11-25 plain, 2026-07-28 with its envelope. */
async function callAs(era: "2025-11-25" | "2026-07-28", params: Record<string, unknown>) {
  const bearer = await token("integrator");
  if (era === "2025-11-25") return post(rpc("tools/call", params), bearer);
  const meta = { ...(params._meta as object), ...envelope() };
  return post(rpc("tools/call", { ...params, _meta: meta }), bearer, {
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/call",
    "mcp-name": String(params.name),
  });
}

// Both eras: a 2025 agent's answer is a stream from the start; a 2026-07-28 agent's becomes one
// when the backend speaks before its result.
describe.each(["2025-11-25", "2026-07-28"] as const)("streaming through the proxy (%s)", (era) => {
  it("relays the backend's progress and log messages while the call is still running", async () => {
    const label = `stream-${crypto.randomUUID()}`;
    const response = await callAs(era, {
      name: "ext_wait_for_release",
      arguments: { label },
      _meta: { progressToken: "p-1" },
    });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const events = sseEvents(response);
    const seen: string[] = [];
    for (let event = await events.next(); event?.method; event = await events.next()) {
      seen.push(event.method);
      if (event.method === "notifications/progress" && event.params?.progress === 1) {
        expect(event.params).toMatchObject({ progressToken: "p-1", total: 2 });
        // The tool has not finished: the proxy is passing progress on, not buffering it.
        expect(await labelState(label)).toBe("running");
        await thirdParty(`/__release?label=${label}`, { method: "POST" });
      }
      if (seen.includes("notifications/progress") && seen.includes("notifications/message")) break;
    }
    expect(seen).toContain("notifications/message");
    let last = await events.next();
    while (last?.method) last = await events.next();
    expect(last?.result).toMatchObject({ content: [{ type: "text", text: `${label} done` }] });
  }, 30_000);

  it("aborts the backend's work when the agent goes away mid-call", async () => {
    const label = `cancel-${crypto.randomUUID()}`;
    const response = await callAs(era, {
      name: "ext_wait_for_release",
      arguments: { label },
      _meta: { progressToken: 9 },
    });
    const events = sseEvents(response);
    const first = await events.next();
    expect(first?.method).toBe("notifications/progress");
    await events.cancel();
    await expect.poll(() => labelState(label), { timeout: 10_000 }).toBe("cancelled");
  }, 30_000);
});

describe("a backend's questions to the agent, on /mcp", () => {
  // An agent that declared none of sampling, elicitation and roots cannot be asked (one that did
  // is: mcp-questions.test.ts). The backend must hear so at once, on a fresh upstream session and
  // on a reused one, never wait for its own timeout.
  it("a backend asking for elicitation or sampling gets a refusal at once, and the call ends", async () => {
    const timeout = Number(env.BACKEND_TIMEOUT_MS);
    // The first request of an isolate also loads the configuration: not what is measured here.
    await call("asker", "ref_test_simple_text", {});
    for (const [name, args, refusal] of [
      // The reference server checks the client's capabilities first (the agent declared none).
      ["ref_test_elicitation", { message: "Who are you?" }, /does not support elicitation/],
      ["ref_test_sampling", { prompt: "?" }, /does not support sampling/],
      // exch asks regardless: the gateway's client answers -32601, on a fresh upstream session
      // and then on the one it kept.
      ["exch_ask", { label: "mcp-fresh" }, /-32601/],
      ["exch_ask", { label: "mcp-kept" }, /-32601/],
    ] as const) {
      const began = Date.now();
      const reply = await call("asker", name, args);
      expect(Date.now() - began, name).toBeLessThan(timeout / 2);
      expect(reply.result?.isError, name).toBe(true);
      expect(reply.result?.content[0]?.text ?? "", name).toMatch(refusal);
    }
  });
});

describe("completion on /mcp", () => {
  it("goes to the backend its prompt or template reference names, with the backend's own name", async () => {
    const bearer = await token("asker");
    const prompt = await message(
      await post(
        rpc("completion/complete", {
          ref: { type: "ref/prompt", name: "ref_test_prompt_with_arguments" },
          argument: { name: "arg1", value: "par" },
        }),
        bearer,
      ),
    );
    expect(prompt.result).toMatchObject({ completion: { values: ["paris", "park", "party"] } });
    const template = await message(
      await post(
        rpc("completion/complete", {
          ref: { type: "ref/resource", uri: "ref+test://template/{id}/data" },
          argument: { name: "id", value: "1" },
        }),
        bearer,
      ),
    );
    expect(template.result).toMatchObject({ completion: { values: ["1", "123"] } });
  });

  it("answers a reference to a server the agent does not hold whole as a missing one", async () => {
    const reply = await message(
      await post(
        rpc("completion/complete", {
          ref: { type: "ref/prompt", name: "ext_greet" },
          argument: { name: "name", value: "A" },
        }),
        await token("asker"),
      ),
    );
    expect(reply.error).toEqual({ code: -32602, message: "Prompt ext_greet not found" });
  });
});

describe("logging/setLevel on /mcp", () => {
  /** The log messages relayed while ref's test_tool_with_logging runs (three at info). */
  async function logsOfACall(bearer: string): Promise<number> {
    const response = await post(
      rpc("tools/call", { name: "ref_test_tool_with_logging", arguments: {} }),
      bearer,
    );
    const text = await response.text();
    return text.split("\n").filter((line) => line.includes("notifications/message")).length;
  }

  it("reaches the backend's session for this agent, which filters at the source", async () => {
    const bearer = await token("asker");
    expect(await logsOfACall(bearer)).toBe(3);
    const quiet = await message(await post(rpc("logging/setLevel", { level: "error" }), bearer));
    expect(quiet.error).toBeUndefined();
    expect(await logsOfACall(bearer)).toBe(0);
    await post(rpc("logging/setLevel", { level: "debug" }), bearer);
    expect(await logsOfACall(bearer)).toBe(3);
  });
});

describe("trace context through /mcp", () => {
  const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  it("reaches the backend with the call, on the hot path and the SDK path, in both eras", {
    timeout: 20_000,
  }, async () => {
    const bearer = await token("sleeper");
    // slow is a 2026-07-28 backend (asked directly), exch a 2025 one with a session: both hear it.
    for (const name of ["slow_trace"]) {
      const plain = rpc("tools/call", { name, arguments: {}, _meta: { traceparent: TRACEPARENT } });
      // An extra key in params makes the request not plain: the SDK server serves it.
      const unusual = rpc("tools/call", {
        name,
        arguments: {},
        _meta: { traceparent: TRACEPARENT, "example.com/note": "x" },
        extra: true,
      });
      for (const body of [plain, unusual]) {
        const reply = await message(await post(body, bearer));
        expect(reply.result?.content[0]?.text, JSON.stringify(body)).toBe(TRACEPARENT);
      }
    }
    const legacy = await message(
      await post(
        rpc("tools/call", {
          name: "exch_trace",
          arguments: {},
          _meta: { traceparent: TRACEPARENT },
        }),
        await token("asker"),
      ),
    );
    expect(legacy.result?.content[0]?.text).toBe(TRACEPARENT);
  });
});

describe("a third-party backend with sessions", () => {
  async function sessions(): Promise<{ sessions: number; live: number }> {
    return (await (await thirdParty("/__state")).json()) as { sessions: number; live: number };
  }

  it("keeps one upstream session per agent across requests, and replaces a forgotten one", async () => {
    const agent = `session-user-${crypto.randomUUID().slice(0, 8)}`;
    // The agent needs the ext grant: use the integrator's token claims with another sub is not
    // allowed by policy, so reuse integrator but count from now.
    const before = await sessions();
    for (let i = 0; i < 3; i++) {
      const reply = await call("integrator", "ext_echo", { message: `${agent}-${i}` });
      expect(reply.result?.content[0]?.text).toBe(`3p: ${agent}-${i}`);
    }
    const after = await sessions();
    expect(after.sessions - before.sessions).toBeLessThanOrEqual(1);

    await thirdParty("/__forget", { method: "POST" });
    const reply = await call("integrator", "ext_echo", { message: "after restart" });
    expect(reply.result?.content[0]?.text).toBe("3p: after restart");
    expect((await sessions()).sessions).toBe(after.sessions + 1);
  });
});

describe("resources, prompts and names through the proxy", () => {
  it("lists a whole-server grant's resources and templates under server+uri, and reads them", async () => {
    const bearer = await token("integrator");
    const listed = await message(await post(rpc("resources/list"), bearer));
    expect(listed.result).toMatchObject({
      resources: [{ uri: "ext+notes://hello", name: "ext_hello" }],
    });
    const templates = await message(await post(rpc("resources/templates/list"), bearer));
    expect(templates.result).toMatchObject({
      resourceTemplates: [{ uriTemplate: "ext+notes://{name}" }],
    });
    const read = await message(
      await post(rpc("resources/read", { uri: "ext+notes://hello" }), bearer),
    );
    expect(read.result).toMatchObject({
      contents: [{ uri: "ext+notes://hello", text: "hello from notes" }],
    });
    const templated = await message(
      await post(rpc("resources/read", { uri: "ext+notes://bob" }), bearer),
    );
    expect(templated.result).toMatchObject({
      contents: [{ uri: "ext+notes://bob", text: "note bob" }],
    });
  });

  it("shows a grant that only names tools no resources, prompts or completion at all", async () => {
    const bearer = await token("ext_narrow");
    const init = await message(
      await post(
        rpc("initialize", {
          protocolVersion: LEGACY_VERSION,
          capabilities: {},
          clientInfo: { name: "t", version: "1" },
        }),
        bearer,
      ),
    );
    const capabilities = (init.result as unknown as { capabilities: Record<string, unknown> })
      .capabilities;
    expect(Object.keys(capabilities).sort()).toEqual(["logging", "tools"]);
    for (const [method, params] of [
      ["resources/list", {}],
      ["resources/read", { uri: "ext+notes://hello" }],
      ["prompts/get", { name: "ext_greet", arguments: { name: "x" } }],
      [
        "completion/complete",
        { ref: { type: "ref/prompt", name: "ext_greet" }, argument: { name: "name", value: "A" } },
      ],
    ] as const) {
      expect((await message(await post(rpc(method, params), bearer))).error?.code, method).toBe(
        -32601,
      );
    }
  });

  it("answers a hidden resource or prompt like a missing one, for an agent that has some", async () => {
    const bearer = await token("agent_name1");
    const hidden = await message(
      await post(rpc("resources/read", { uri: "ext+notes://hello" }), bearer),
    );
    const missing = await message(
      await post(rpc("resources/read", { uri: "mcp1+nope://x" }), bearer),
    );
    expect(hidden.error).toEqual({ code: -32602, message: "Resource ext+notes://hello not found" });
    expect(missing.error?.code).toBe(-32602);
    const prompt = await message(
      await post(rpc("prompts/get", { name: "ext_greet", arguments: { name: "x" } }), bearer),
    );
    expect(prompt.error).toEqual({ code: -32602, message: "Prompt ext_greet not found" });
  });

  it("lists and gets prompts under server_name", async () => {
    const bearer = await token("integrator");
    const listed = await message(await post(rpc("prompts/list"), bearer));
    expect(listed.result).toMatchObject({ prompts: [{ name: "ext_greet" }] });
    const got = await message(
      await post(rpc("prompts/get", { name: "ext_greet", arguments: { name: "Ada" } }), bearer),
    );
    expect(got.result).toMatchObject({ messages: [{ content: { text: "Say hello to Ada" } }] });
  });

  it("maps a tool name the model providers would reject, and routes the mapped name back", async () => {
    const names = (
      await message(await post(rpc("tools/list"), await token("integrator")))
    ).result?.tools.map((t) => t.name);
    const mapped = names?.find((n) => n.startsWith("ext_files-read-v2_"));
    expect(mapped).toBe("ext_files-read-v2_afe91f73");
    for (const name of names ?? []) expect(name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    const reply = await call("integrator", mapped as string, { path: "/etc/motd" });
    expect(reply.result?.content[0]?.text).toBe("read /etc/motd");
  });
});

describe("list_changed from a backend, to an agent that listens", () => {
  it("relays a backend's tools/list_changed over the agent's subscriptions/listen stream", async () => {
    const response = await post(
      {
        jsonrpc: "2.0",
        id: "listen-1",
        method: "subscriptions/listen",
        params: { notifications: { toolsListChanged: true }, _meta: envelope() },
      },
      await token("watcher"),
      { "mcp-protocol-version": MODERN, "mcp-method": "subscriptions/listen" },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const events = sseEvents(response);
    const ack = await events.next();
    expect(ack?.method).toBe("notifications/subscriptions/acknowledged");

    const name = `added_${crypto.randomUUID().slice(0, 6)}`;
    // The upstream listen opens right after the agent's: retry the change until it is heard.
    const heard = (async () => {
      for (let event = await events.next(); event; event = await events.next()) {
        if (event.method === "notifications/tools/list_changed") return true;
      }
      return false;
    })();
    let done = false;
    void heard.then(() => {
      done = true;
    });
    for (let i = 0; i < 20 && !done; i++) {
      await fetch(`${inject("changingUrl")}/__add?name=${name}_${i}`, { method: "POST" });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(await heard).toBe(true);
    await events.cancel();

    const tools = (
      await message(await post(rpc("tools/list"), await token("watcher")))
    ).result?.tools.map((t) => t.name);
    expect(tools).toContain("dyn_first");
    expect(tools?.some((t) => t.startsWith(`dyn_${name}`))).toBe(true);
  }, 30_000);

  it("declares listChanged for tools, resources and prompts", async () => {
    const reply = (await (await modern("server/discover")).json()) as {
      result: { capabilities: object };
    };
    expect(reply.result.capabilities).toMatchObject({
      tools: { listChanged: true },
      resources: { listChanged: true },
      prompts: { listChanged: true },
    });
  });
});
