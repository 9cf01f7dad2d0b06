/**
 * Four-way parity: the gateway's two stand-ins for the MCP SDK, each against the SDK path it
 * replaces, and against each other. Every case is sent four times, under FAST_PATH on/off ×
 * DIRECT on/off (env copies passed to `worker.fetch`), for a 2025 (legacy) and a 2026-07-28
 * (modern) agent, and all four answers must be identical: status, media type and every JSON-RPC
 * message. Each case also says what a real answer is (a result of a given shape, or an error of
 * a given code), so four identical failures do not pass.
 *
 * The backends (global-setup.ts, vitest.proxy.config.mts):
 * - mcp1, the battle Worker over its service binding (`agents` createMcpHandler): 2026-07-28.
 * - mcp3, a Node server on SDK v2 createMcpHandler: 2026-07-28 (reached through a counting relay).
 * - dyn, the changing Node server (SDK v2 createMcpHandler): 2026-07-28.
 * - ext, a stateful third-party server on SDK v1 (test/support/third-party-backend.ts): 2025
 *   only, one upstream session per agent. DIRECT never applies to it.
 * - mcp2, a dead address: never answers, so its era is never known and DIRECT never applies.
 *
 * How the suite knows each switch is exercised:
 * - DIRECT. The gateway asks a backend directly only once it knows, per isolate, that the backend
 *   serves 2026-07-28; it learns that on first contact. Before every measured request the agent's
 *   backends are warmed up (a tools/list through the default gateway, outside the measurement),
 *   so the measured request finds the era known. Every request the gateway sends a backend is
 *   recorded (a wrapper around the global `fetch` for the networked backends, and around the MCP1
 *   binding in the env copies), with its shape: `direct.ts` passes its headers as a plain object,
 *   the SDK's transport as a `Headers` (and asks for `redirect: "manual"`). The suite asserts
 *   that, under DIRECT=on, every request to a 2026-07-28 backend had the direct shape, under
 *   DIRECT=off none did, ext and mcp2 only ever got the SDK's, no warmed backend got an
 *   `initialize` or `server/discover` in a measured request, every case reached exactly the
 *   backends it names, and all four settings sent the same requests (method by method).
 * - FAST_PATH. The hot path and the SDK server frame their answers slightly differently in HTTP
 *   headers that `observed` does not compare: a hot-path JSON answer carries `content-length`,
 *   the SDK's does not; an SDK SSE answer carries `connection: keep-alive`, the hot path's does
 *   not. The suite asserts that tools/call and tools/list were framed by the hot path exactly when
 *   FAST_PATH=on, and every other method by the SDK server in all four settings. (If the two
 *   framings are ever made identical, this witness has to be replaced, not dropped.)
 *
 * Listings that include state other test files change concurrently (mcp1's battle index, dyn's
 * tool list) are retried: a real difference between settings fails every attempt.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { token } from "./client.ts";
import { type Era, ID, type Message, observed, mcpRequest as request } from "./exchange.ts";
import { TEST_POLICY } from "./fixtures.ts";

/** The test policy, plus an agent whose grants name tools its backends do not have. */
const POLICY = {
  ...TEST_POLICY,
  ghost: { mcp1: ["echo", "vanished"], mcp3: ["echo", "vanished"], ext: ["echo", "vanished"] },
};

type Server = "mcp1" | "mcp2" | "mcp3" | "ext" | "dyn";
const MODERN_BACKENDS = new Set<Server>(["mcp1", "mcp3", "dyn"]);
const HANDSHAKES = new Set(["initialize", "notifications/initialized", "server/discover"]);

/** One request the gateway sent a backend. */
interface Sent {
  server: Server;
  /** The JSON-RPC method, or the HTTP method for a body-less request (a GET stream, a DELETE). */
  method: string;
  /** Sent by `direct.ts` (plain headers object), not by the SDK's transport (`Headers`). */
  direct: boolean;
  /** The backend's HTTP status, or "failed" when the fetch itself failed. */
  status?: number | "failed";
}

let sent: Sent[] = [];

function backendOf(input: RequestInfo | URL): Server | undefined {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const at = `${url.origin}${url.pathname}`;
  if (at === "https://mcp1.internal/mcp") return "mcp1";
  if (at === inject("mcp3Url")) return "mcp3";
  if (at === inject("deadUrl")) return "mcp2";
  if (at === `${inject("thirdPartyUrl")}/mcp`) return "ext";
  if (at === `${inject("changingUrl")}/mcp`) return "dyn";
  return undefined;
}

function methodOf(init: RequestInit | undefined): string {
  if (typeof init?.body !== "string") return init?.method ?? "GET";
  const message = JSON.parse(init.body) as { method?: string } | { method?: string }[];
  if (Array.isArray(message)) return `batch(${message.map((m) => m.method).join(",")})`;
  return message.method ?? "response";
}

/** Records a request to a backend, and its answer's status once it comes. */
function noted(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  answer: Promise<Response>,
): Promise<Response> {
  const server = backendOf(input);
  if (!server) return answer;
  const record: Sent = {
    server,
    method: methodOf(init),
    direct: !(init?.headers instanceof Headers),
  };
  sent.push(record);
  return answer.then(
    (response) => {
      record.status = response.status;
      return response;
    },
    (e: unknown) => {
      record.status = "failed";
      throw e;
    },
  );
}

// The networked backends are reached through the global fetch, looked up at each call.
const realFetch = globalThis.fetch;
beforeAll(() => {
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) =>
    noted(input, init, realFetch(input, init))) as typeof fetch;
});
afterAll(() => {
  globalThis.fetch = realFetch;
});

// mcp1 is reached through its binding: the env copies carry a recording one.
const recordingMcp1 = {
  fetch: (input: RequestInfo | URL, init?: RequestInit) =>
    noted(input, init, env.MCP1.fetch(input, init)),
} as unknown as Env["MCP1"];

// The rates are raised out of the way: a case is sent many times, and the limits are not under test.
const base = {
  ...env,
  MCP1: recordingMcp1,
  POLICY: JSON.stringify(POLICY),
  AGENT_RATE_LIMIT_PER_MINUTE: "1000000",
  TOOL_RATE_LIMIT_PER_MINUTE: "1000000",
};

interface Setting {
  label: string;
  fast: boolean;
  direct: boolean;
  env: Env;
}

// Built once each: the gateway caches its configuration per env object.
const SETTINGS: Setting[] = [
  { label: "FAST_PATH=on DIRECT=on", fast: true, direct: true },
  { label: "FAST_PATH=off DIRECT=on", fast: false, direct: true },
  { label: "FAST_PATH=on DIRECT=off", fast: true, direct: false },
  { label: "FAST_PATH=off DIRECT=off", fast: false, direct: false },
].map((s) => ({
  ...s,
  env: {
    ...base,
    FAST_PATH: s.fast ? "on" : "off",
    DIRECT: s.direct ? "on" : "off",
  } as Env,
}));
/** The gateway as deployed (both switches on): for warm-ups outside the measurement. */
const WARM = SETTINGS[0] as Setting;

type Observed = Awaited<ReturnType<typeof observed>>;

/** Whether the hot path framed the answer (see the header: the witness for FAST_PATH). */
function framedByHotPath(response: Response): boolean {
  const type = (response.headers.get("content-type") ?? "").split(";")[0];
  if (type === "application/json") return response.headers.has("content-length");
  return !response.headers.has("connection");
}

interface Run {
  setting: Setting;
  answer: Observed;
  hot: boolean;
  sent: Sent[];
}

/**
 * A tools/list as `agent` through the deployed gateway, so that its backends' eras (and ext's
 * session for the agent) are known; returns what the backends were sent.
 */
async function warmUp(agent: string): Promise<Sent[]> {
  const { answer, sent: seen } = await send(WARM, "legacy", agent, "tools/list");
  expect(answer.messages.at(-1)?.result, `warm-up of ${agent}`).toHaveProperty("tools");
  return seen;
}

type During = (era: Era) => Promise<void>;

/** Sends one request under `setting`, recording the answer and what the backends were sent. */
async function send(
  setting: Setting,
  era: Era,
  agent: string,
  method: string,
  params: Record<string, unknown> = {},
  during?: During,
): Promise<Run> {
  const bearer = await token(agent);
  sent = [];
  const ctx = createExecutionContext();
  const answering = worker.fetch(request(era, bearer, method, params), setting.env, ctx);
  await during?.(era);
  const response = await answering;
  const hot = framedByHotPath(response);
  const answer = await observed(response);
  await waitOnExecutionContext(ctx);
  const run = { setting, answer, hot, sent };
  sent = [];
  return run;
}

/** Sends one request under each setting in turn, each after a warm-up of the agent's backends. */
async function allFour(
  era: Era,
  agent: string,
  method: string,
  params: Record<string, unknown>,
  during?: During,
): Promise<Run[]> {
  const runs: Run[] = [];
  for (const setting of SETTINGS) {
    await warmUp(agent);
    runs.push(await send(setting, era, agent, method, params, during));
  }
  return runs;
}

/** What a real answer to a case is: a result of this shape, or an error of this code. */
type Expected =
  | { result: Record<string, unknown> }
  | { error: { code: number; message?: string | RegExp } };

interface Case {
  label: string;
  agent: string;
  method: string;
  params?: () => Record<string, unknown>;
  /** The backends the gateway must ask (a case that reaches none is answered by the gateway). */
  reaches: Server[];
  expected: Expected;
  /** The messages before the response (notifications relayed while the call ran). */
  before?: unknown[];
  /** Something to do while the request runs (a backend to release). */
  during?: During;
  /** Attempts beyond the first, for listings of state other test files change concurrently. */
  retry?: number;
  /** The HTTP status, when not 200 (a 2026-07-28 `-32601` comes with 404, as the SDK sends it). */
  status?: (era: Era) => number;
}

/** What a server without the capability answers: `-32601`, with 404 in the 2026-07-28 era. */
const METHOD_NOT_FOUND = {
  expected: { error: { code: -32601 } },
  status: (era: Era) => (era === "modern" ? 404 : 200),
} as const;

function echo(name: string, message = "parity") {
  return () => ({ name, arguments: { message } });
}

const unknownTool = (name: string) => ({
  error: { code: -32602, message: `Tool ${name} not found` },
});

/** The tool error a v1 SDK server answers a call with when the tool throws `McpError`. */
const backendToolError = (text: string) => ({
  result: { isError: true, content: [{ type: "text", text: `MCP error -32602: ${text}` }] },
});

const BATTLE = "parity-read-battle";
let mappedName = "";

async function labelState(label: string): Promise<string | undefined> {
  const state = (await (await realFetch(`${inject("thirdPartyUrl")}/__state`)).json()) as {
    labels: Record<string, string>;
  };
  return state.labels[label];
}

const RELEASE_LABEL = "parity-release";

/** Lets ext's wait_for_release finish once it is waiting. */
async function release(): Promise<void> {
  await expect.poll(() => labelState(RELEASE_LABEL), { timeout: 10_000 }).toBe("running");
  await realFetch(`${inject("thirdPartyUrl")}/__release?label=${RELEASE_LABEL}`, {
    method: "POST",
  });
}

const CASES: Case[] = [
  // tools/list
  {
    label: "tools/list over mcp1 and mcp3",
    agent: "agent_name1",
    method: "tools/list",
    reaches: ["mcp1", "mcp3"],
    expected: {
      result: {
        tools: expect.arrayContaining([
          expect.objectContaining({ name: "mcp1_echo" }),
          expect.objectContaining({ name: "mcp3_echo" }),
        ]),
      },
    },
  },
  {
    label: "tools/list with a dead backend",
    agent: "agent_name2",
    method: "tools/list",
    reaches: ["mcp2", "mcp3"],
    expected: {
      result: { tools: [expect.objectContaining({ name: "mcp3_echo" }), expect.anything()] },
    },
  },
  {
    label: "tools/list through a session backend",
    agent: "integrator",
    method: "tools/list",
    reaches: ["ext"],
    expected: {
      result: { tools: expect.arrayContaining([expect.objectContaining({ name: "ext_echo" })]) },
    },
  },
  {
    label: "tools/list filtered to the tools a grant names",
    agent: "narrow",
    method: "tools/list",
    reaches: ["mcp1"],
    expected: { result: { tools: [expect.objectContaining({ name: "mcp1_echo" })] } },
  },
  {
    label: "tools/list of a changing backend",
    agent: "watcher",
    method: "tools/list",
    reaches: ["dyn"],
    expected: {
      result: { tools: expect.arrayContaining([expect.objectContaining({ name: "dyn_first" })]) },
    },
    retry: 2,
  },
  {
    label: "tools/list of an agent without grants",
    agent: "nobody",
    method: "tools/list",
    reaches: [],
    expected: { result: { tools: [] } },
  },
  {
    label: "tools/list of grants naming tools the backends lack",
    agent: "ghost",
    method: "tools/list",
    reaches: ["ext", "mcp1", "mcp3"],
    expected: {
      result: {
        tools: [
          expect.objectContaining({ name: "ext_echo" }),
          expect.objectContaining({ name: "mcp1_echo" }),
          expect.objectContaining({ name: "mcp3_echo" }),
        ],
      },
    },
  },
  // tools/call
  {
    label: "an echo on mcp1 (service binding)",
    agent: "agent_name1",
    method: "tools/call",
    params: echo("mcp1_echo"),
    reaches: ["mcp1"],
    expected: { result: { content: [{ type: "text", text: "Echo: parity" }] } },
  },
  {
    label: "an echo on mcp3 (fetch, assertion)",
    agent: "agent_name1",
    method: "tools/call",
    params: echo("mcp3_echo"),
    reaches: ["mcp3"],
    expected: { result: { content: [{ type: "text", text: "Echo: parity" }] } },
  },
  {
    label: "an echo on a session backend",
    agent: "integrator",
    method: "tools/call",
    params: echo("ext_echo"),
    reaches: ["ext"],
    expected: { result: { content: [{ type: "text", text: "3p: parity" }] } },
  },
  {
    label: "a call on the changing backend",
    agent: "watcher",
    method: "tools/call",
    params: () => ({ name: "dyn_first", arguments: {} }),
    reaches: ["dyn"],
    expected: { result: { content: [{ type: "text", text: "first" }] } },
  },
  {
    label: "a call to a dead backend",
    agent: "agent_name2",
    method: "tools/call",
    params: echo("mcp2_echo"),
    reaches: ["mcp2"],
    expected: {
      result: {
        isError: true,
        content: [{ type: "text", text: expect.stringMatching(/^Server mcp2 is unavailable/) }],
      },
    },
  },
  {
    label: "a tool of a server the gateway does not know",
    agent: "agent_name1",
    method: "tools/call",
    params: echo("nosuch_echo"),
    reaches: [],
    expected: unknownTool("nosuch_echo"),
  },
  {
    label: "an unknown tool on mcp1 (its grant is whole)",
    agent: "agent_name1",
    method: "tools/call",
    params: echo("mcp1_no_such_tool"),
    reaches: ["mcp1"],
    expected: unknownTool("mcp1_no_such_tool"),
  },
  {
    label: "an unknown tool on mcp3 (its grant is whole)",
    agent: "agent_name1",
    method: "tools/call",
    params: echo("mcp3_no_such_tool"),
    reaches: ["mcp3"],
    expected: unknownTool("mcp3_no_such_tool"),
  },
  {
    label: "an unknown tool on a session backend (its grant is whole)",
    agent: "integrator",
    method: "tools/call",
    params: echo("ext_no_such_tool"),
    reaches: ["ext"],
    // The v1 SDK server answers an unknown tool with a tool error, which the gateway passes on.
    expected: backendToolError("Tool no_such_tool not found"),
  },
  {
    label: "a tool of a server the policy does not grant",
    agent: "narrow",
    method: "tools/call",
    params: echo("mcp3_echo"),
    reaches: [],
    expected: unknownTool("mcp3_echo"),
  },
  {
    label: "a tool the grant does not name",
    agent: "narrow",
    method: "tools/call",
    params: echo("mcp1_update_battle_process"),
    reaches: [],
    expected: unknownTool("mcp1_update_battle_process"),
  },
  {
    label: "a tool the policy names but mcp1 lacks",
    agent: "ghost",
    method: "tools/call",
    params: echo("mcp1_vanished"),
    reaches: ["mcp1"],
    expected: unknownTool("mcp1_vanished"),
  },
  {
    label: "a tool the policy names but mcp3 lacks",
    agent: "ghost",
    method: "tools/call",
    params: echo("mcp3_vanished"),
    reaches: ["mcp3"],
    expected: unknownTool("mcp3_vanished"),
  },
  {
    label: "a tool the policy names but the session backend lacks",
    agent: "ghost",
    method: "tools/call",
    params: echo("ext_vanished"),
    reaches: ["ext"],
    expected: backendToolError("Tool vanished not found"),
  },
  {
    label: "arguments mcp1's tool rejects",
    agent: "agent_name1",
    method: "tools/call",
    params: () => ({ name: "mcp1_echo", arguments: {} }),
    reaches: ["mcp1"],
    expected: {
      result: {
        isError: true,
        content: [{ type: "text", text: expect.stringContaining("Input validation error") }],
      },
    },
  },
  {
    label: "arguments mcp3's tool rejects",
    agent: "agent_name1",
    method: "tools/call",
    params: () => ({ name: "mcp3_echo", arguments: {} }),
    reaches: ["mcp3"],
    expected: {
      result: {
        isError: true,
        content: [{ type: "text", text: expect.stringContaining("Input validation error") }],
      },
    },
  },
  {
    label: "arguments the session backend's tool rejects",
    agent: "integrator",
    method: "tools/call",
    params: () => ({ name: "ext_echo", arguments: {} }),
    reaches: ["ext"],
    expected: {
      result: {
        isError: true,
        content: [{ type: "text", text: expect.stringContaining("Input validation error") }],
      },
    },
  },
  {
    label: "a call with a progress token (mcp3)",
    agent: "agent_name1",
    method: "tools/call",
    params: () => ({ ...echo("mcp3_echo")(), _meta: { progressToken: "p" } }),
    reaches: ["mcp3"],
    expected: { result: { content: [{ type: "text", text: "Echo: parity" }] } },
  },
  {
    label: "a call with a progress token (mcp1)",
    agent: "agent_name1",
    method: "tools/call",
    params: () => ({ ...echo("mcp1_echo")(), _meta: { progressToken: 7 } }),
    reaches: ["mcp1"],
    expected: { result: { content: [{ type: "text", text: "Echo: parity" }] } },
  },
  {
    label: "a call that reports progress and logs while it runs (session backend)",
    agent: "integrator",
    method: "tools/call",
    params: () => ({
      name: "ext_wait_for_release",
      arguments: { label: RELEASE_LABEL },
      _meta: { progressToken: "p" },
    }),
    reaches: ["ext"],
    expected: { result: { content: [{ type: "text", text: `${RELEASE_LABEL} done` }] } },
    before: [
      {
        method: "notifications/progress",
        params: { progressToken: "p", progress: 1, total: 2, message: `${RELEASE_LABEL} started` },
      },
      {
        method: "notifications/message",
        params: { level: "info", data: `${RELEASE_LABEL} is waiting` },
      },
      { method: "notifications/progress", params: { progressToken: "p", progress: 2, total: 2 } },
    ],
    during: release,
  },
  {
    label: "a call under a name mapped for the model providers",
    agent: "integrator",
    method: "tools/call",
    params: () => ({ name: mappedName, arguments: { path: "/etc/motd" } }),
    reaches: ["ext"],
    expected: { result: { content: [{ type: "text", text: "read /etc/motd" }] } },
  },
  // resources
  {
    label: "resources/list over mcp1 (battles) and mcp3 (none)",
    agent: "agent_name1",
    method: "resources/list",
    reaches: ["mcp1", "mcp3"],
    expected: {
      result: {
        resources: expect.arrayContaining([
          expect.objectContaining({ uri: `mcp1+battle://${BATTLE}` }),
        ]),
      },
    },
    retry: 2,
  },
  {
    label: "resources/list through a session backend",
    agent: "integrator",
    method: "resources/list",
    reaches: ["ext"],
    expected: {
      result: {
        resources: [expect.objectContaining({ uri: "ext+notes://hello", name: "ext_hello" })],
      },
    },
  },
  {
    label: "resources/list with a dead backend",
    agent: "agent_name2",
    method: "resources/list",
    reaches: ["mcp2", "mcp3"],
    expected: { result: { resources: [] } },
  },
  {
    // No whole-server grant: the gateway declares no resources capability for this agent.
    label: "resources/list of grants that name tools only",
    agent: "narrow",
    method: "resources/list",
    reaches: [],
    ...METHOD_NOT_FOUND,
  },
  {
    label: "resources/templates/list over mcp1 and mcp3",
    agent: "agent_name1",
    method: "resources/templates/list",
    reaches: ["mcp1", "mcp3"],
    expected: {
      result: {
        resourceTemplates: [expect.objectContaining({ uriTemplate: "mcp1+battle://{battle_id}" })],
      },
    },
  },
  {
    label: "resources/templates/list through a session backend",
    agent: "integrator",
    method: "resources/templates/list",
    reaches: ["ext"],
    expected: {
      result: {
        resourceTemplates: [expect.objectContaining({ uriTemplate: "ext+notes://{name}" })],
      },
    },
  },
  {
    label: "resources/read of a battle on mcp1",
    agent: "agent_name1",
    method: "resources/read",
    params: () => ({ uri: `mcp1+battle://${BATTLE}` }),
    reaches: ["mcp1"],
    expected: {
      result: { contents: [expect.objectContaining({ uri: `mcp1+battle://${BATTLE}` })] },
    },
  },
  {
    label: "resources/read of a missing battle on mcp1",
    agent: "agent_name1",
    method: "resources/read",
    params: () => ({ uri: "mcp1+battle://parity-no-such-battle" }),
    reaches: ["mcp1"],
    expected: {
      error: { code: -32602, message: "Resource mcp1+battle://parity-no-such-battle not found" },
    },
  },
  {
    label: "resources/read on a server without resources (mcp3)",
    // A 2026-07-28 server answers a method it lacks with HTTP 404 and a -32601 body; through
    // either client the gateway reads it as the backend's answer: nothing there to reach.
    agent: "agent_name1",
    method: "resources/read",
    params: () => ({ uri: "mcp3+notes://x" }),
    reaches: ["mcp3"],
    expected: { error: { code: -32602, message: "Resource mcp3+notes://x not found" } },
  },
  {
    label: "resources/read of a resource on a session backend",
    agent: "integrator",
    method: "resources/read",
    params: () => ({ uri: "ext+notes://hello" }),
    reaches: ["ext"],
    expected: { result: { contents: [{ uri: "ext+notes://hello", text: "hello from notes" }] } },
  },
  {
    label: "resources/read of a missing resource on a session backend",
    agent: "integrator",
    method: "resources/read",
    params: () => ({ uri: "ext+other://nothing" }),
    reaches: ["ext"],
    expected: { error: { code: -32602, message: "Resource ext+other://nothing not found" } },
  },
  {
    label: "resources/read on a dead backend",
    agent: "agent_name2",
    method: "resources/read",
    params: () => ({ uri: "mcp2+notes://x" }),
    reaches: ["mcp2"],
    expected: { error: { code: -32603, message: "The server holding it is unavailable" } },
  },
  {
    label: "resources/read on a server the grant does not hold whole",
    agent: "narrow",
    method: "resources/read",
    params: () => ({ uri: `mcp1+battle://${BATTLE}` }),
    reaches: [],
    ...METHOD_NOT_FOUND,
  },
  // prompts
  {
    label: "prompts/list through a session backend",
    agent: "integrator",
    method: "prompts/list",
    reaches: ["ext"],
    expected: { result: { prompts: [expect.objectContaining({ name: "ext_greet" })] } },
  },
  {
    label: "prompts/list over servers without prompts (mcp1, mcp3)",
    agent: "agent_name1",
    method: "prompts/list",
    reaches: ["mcp1", "mcp3"],
    expected: { result: { prompts: [] } },
  },
  {
    label: "prompts/get of a prompt on a session backend",
    agent: "integrator",
    method: "prompts/get",
    params: () => ({ name: "ext_greet", arguments: { name: "Ada" } }),
    reaches: ["ext"],
    expected: {
      result: { messages: [{ role: "user", content: { type: "text", text: "Say hello to Ada" } }] },
    },
  },
  {
    label: "prompts/get of a missing prompt on a session backend",
    agent: "integrator",
    method: "prompts/get",
    params: () => ({ name: "ext_nope", arguments: {} }),
    reaches: ["ext"],
    expected: { error: { code: -32602, message: "Prompt ext_nope not found" } },
  },
  {
    label: "prompts/get on a server without prompts (mcp1)",
    // A 2026-07-28 server answers a method it lacks with HTTP 404 and a -32601 body; through
    // either client the gateway reads it as the backend's answer: nothing there to reach.
    agent: "agent_name1",
    method: "prompts/get",
    params: () => ({ name: "mcp1_nope", arguments: {} }),
    reaches: ["mcp1"],
    expected: { error: { code: -32602, message: "Prompt mcp1_nope not found" } },
  },
  {
    label: "prompts/get on a dead backend",
    agent: "agent_name2",
    method: "prompts/get",
    params: () => ({ name: "mcp2_nope", arguments: {} }),
    reaches: ["mcp2"],
    expected: { error: { code: -32603, message: "The server holding it is unavailable" } },
  },
];

const HOT_METHODS = new Set(["tools/call", "tools/list"]);

function checkSwitches(c: Case, runs: Run[]): void {
  const work = (run: Run) =>
    run.sent
      .filter((s) => !HANDSHAKES.has(s.method))
      .map((s) => `${s.server} ${s.method} ${s.status}`)
      .sort();
  for (const run of runs) {
    const where = `${c.label}, ${run.setting.label}`;
    // FAST_PATH: the hot path framed the answer exactly when it was on and the method is its.
    expect(run.hot, `${where}: framed by the hot path`).toBe(
      run.setting.fast && HOT_METHODS.has(c.method),
    );
    // The backends it had to ask, and no others.
    expect([...new Set(run.sent.map((s) => s.server))].sort(), `${where}: backends`).toEqual(
      [...c.reaches].sort(),
    );
    for (const s of run.sent) {
      if (MODERN_BACKENDS.has(s.server)) {
        // DIRECT: a warmed 2026-07-28 backend was asked directly exactly when DIRECT was on...
        expect(s, `${where}: ${s.server} ${s.method}`).toEqual({
          ...s,
          direct: run.setting.direct,
        });
        // ...and the SDK client, when it asked instead, already knew the backend's era.
        expect(HANDSHAKES.has(s.method), `${where}: ${s.server} ${s.method}`).toBe(false);
      } else {
        expect(s.direct, `${where}: ${s.server} ${s.method}`).toBe(false);
      }
    }
    // The same requests to the backends under every setting, only sent differently.
    expect(work(run), `${where}: the same backend requests`).toEqual(work(runs[0] as Run));
  }
}

function checkReal(c: Case, era: Era, answer: Observed): void {
  expect(answer.status).toBe(c.status?.(era) ?? 200);
  const last = answer.messages.at(-1) as Message;
  expect(last.id).toBe(ID);
  expect(answer.messages.slice(0, -1)).toMatchObject(c.before ?? []);
  if ("result" in c.expected) {
    expect(last.error).toBeUndefined();
    expect(last.result).toMatchObject(c.expected.result);
  } else {
    expect(last.result).toBeUndefined();
    expect(last.error).toMatchObject({
      code: c.expected.error.code,
      ...(c.expected.error.message === undefined
        ? {}
        : {
            message:
              typeof c.expected.error.message === "string"
                ? c.expected.error.message
                : expect.stringMatching(c.expected.error.message),
          }),
    });
  }
}

beforeAll(async () => {
  // A battle to read, through the gateway (mcp1's tools change state: never sent four times).
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    request("legacy", await token("agent_name1"), "tools/call", {
      name: "mcp1_update_battle_process",
      arguments: { battle_id: BATTLE, message: "parity opens", reported_by: "parity" },
    }),
    WARM.env,
    ctx,
  );
  const answer = await observed(response);
  await waitOnExecutionContext(ctx);
  expect(answer.messages.at(-1)?.result?.isError).toBeFalsy();

  // The mapped name of ext's `files.read/v2`, as the agent sees it.
  const listCtx = createExecutionContext();
  const listed = await observed(
    await worker.fetch(
      request("legacy", await token("integrator"), "tools/list", {}),
      WARM.env,
      listCtx,
    ),
  );
  await waitOnExecutionContext(listCtx);
  const tools = (listed.messages.at(-1)?.result?.tools ?? []) as { name: string }[];
  mappedName = tools.find((t) => t.name.startsWith("ext_files-read-v2_"))?.name ?? "";
  expect(mappedName).not.toBe("");
});

describe("four-way parity: FAST_PATH on/off × DIRECT on/off answer alike", () => {
  it("warms up: the first contact learns each backend's era, later requests go directly", async () => {
    await warmUp("agent_name1");
    await warmUp("watcher");
    const seen = [...(await warmUp("agent_name1")), ...(await warmUp("watcher"))];
    expect(
      seen.map((s) => `${s.server} ${s.method} ${s.direct ? "direct" : "sdk"}`).sort(),
    ).toEqual(["dyn tools/list direct", "mcp1 tools/list direct", "mcp3 tools/list direct"]);
  });

  for (const era of ["legacy", "modern"] as const) {
    for (const c of CASES) {
      it(`${era}: ${c.label}`, { retry: c.retry ?? 0, timeout: 60_000 }, async () => {
        const runs = await allFour(era, c.agent, c.method, c.params?.() ?? {}, c.during);
        const [first] = runs as [Run];
        for (const run of runs) {
          expect(run.answer, `${run.setting.label} vs ${first.setting.label}`).toEqual(
            first.answer,
          );
        }
        checkReal(c, era, first.answer);
        checkSwitches(c, runs);
      });
    }
  }
});

describe("what a request leaves for the next one is the same under every setting", () => {
  // A backend's JSON-RPC error is an answer, not a sign that the backend changed or died: the
  // gateway should still know its era afterwards, and not probe it again on the next request.
  const leftovers: [string, string, Record<string, unknown>][] = [
    ["an error in band (an unknown tool on mcp1)", "tools/call", echo("mcp1_no_such_tool")()],
    ["a listing from servers without the method (prompts/list on mcp1, mcp3)", "prompts/list", {}],
    [
      "a get from a server without the method (prompts/get on mcp1)",
      "prompts/get",
      {
        name: "mcp1_nope",
        arguments: {},
      },
    ],
  ];
  for (const [label, method, params] of leftovers) {
    it(`the eras stay known after ${label}`, async () => {
      const probes: Record<string, string[]> = {};
      for (const setting of SETTINGS) {
        await warmUp("agent_name1");
        const run = await send(setting, "legacy", "agent_name1", method, params);
        expect(run.answer.messages.at(-1)).toHaveProperty("id", ID);
        probes[setting.label] = (await warmUp("agent_name1"))
          .filter((s) => HANDSHAKES.has(s.method))
          .map((s) => `${s.server} ${s.method}`);
      }
      expect(probes).toEqual(Object.fromEntries(SETTINGS.map((s) => [s.label, []])));
    });
  }
});
