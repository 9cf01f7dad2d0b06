/**
 * How the exchange tests (door-exchanges, mcp-questions, mcp-mrtr) drive an agent: raw 2025
 * sessions for what an SDK client would never send, SSE answers read message by message, an SDK
 * client whose GET stream is known to be open, a 2026-07-28 client that records what it read, and
 * what the test backends say happened (`/__state`).
 */

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import {
  type ElicitResult,
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";
import { createParser } from "eventsource-parser";
import { afterEach, expect, inject } from "vitest";
import worker from "../../../workers/proxy/src/index.ts";
import { LEGACY_VERSION, token } from "./client.ts";
import { closeAfterTest, gatewayFetch } from "./door-client.ts";

export const MODERN = "2026-07-28";

/** The answer mrtr's `confirm` asks for, as a 2026-07-28 retry's `inputResponses`. */
export const CONFIRMED = { confirm: { action: "accept", content: { confirm: true } } };

// The backends' `/__state` shapes, restated: test/support imports Node, which workerd's types lack.

/** What `exch` reports at `/__state` (`ExchangesState` in test/support/exchanges-backend.ts). */
export interface ExchangesState {
  labels: Record<string, string>;
  errors: string[];
  rootsChanged: number;
}

/** What `mrtr` reports at `/__state` (`MrtrState` in test/support/mrtr-backend.ts). */
export interface MrtrState {
  issued: string[];
  calls: { tool: string; requestState?: string }[];
}

export async function exchangesState(): Promise<ExchangesState> {
  return (await fetch(`${inject("exchangesUrl")}/__state`)).json() as Promise<ExchangesState>;
}

export async function mrtrState(): Promise<MrtrState> {
  return (await fetch(`${inject("mrtrUrl")}/__state`)).json() as Promise<MrtrState>;
}

/** How long `work` took, in ms, with its value. */
export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const began = Date.now();
  const value = await work();
  return { value, ms: Date.now() - began };
}

export type Message = {
  id?: string | number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
};

const readers: ReadableStreamDefaultReader[] = [];
afterEach(async () => {
  await Promise.allSettled(readers.splice(0).map((reader) => reader.cancel()));
});

/** Reads the JSON-RPC messages of an SSE response one at a time, as they arrive. */
export function sseMessages(response: Response): () => Promise<Message> {
  if (!response.body) throw new Error(`no body (HTTP ${response.status})`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  readers.push(reader);
  const queue: Message[] = [];
  const parser = createParser({
    onEvent: (event) => {
      if (event.data !== "") queue.push(JSON.parse(event.data));
    },
  });
  return async () => {
    for (;;) {
      const next = queue.shift();
      if (next) return next;
      const { done, value } = await reader.read();
      if (done) throw new Error("the stream ended");
      parser.feed(value);
    }
  };
}

function post(url: URL, bearer: string, session: string | undefined, body: unknown) {
  return exports.default.fetch(
    new Request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": LEGACY_VERSION,
        authorization: `Bearer ${bearer}`,
        ...(session === undefined ? {} : { "mcp-session-id": session }),
      },
      body: JSON.stringify(body),
    }),
  );
}

/** An agent's 2025-era session at `url` (/mcp or a door), driven by hand. */
export class RawSession {
  readonly url: URL;
  readonly bearer: string;
  /** The session id the gateway issued, if it issued one. */
  readonly session: string | undefined;

  private constructor(url: URL, bearer: string, session: string | undefined) {
    this.url = url;
    this.bearer = bearer;
    this.session = session;
  }

  static async open(url: URL, agent: string, capabilities: ClientCapabilities) {
    const bearer = await token(agent);
    const initialize = await post(url, bearer, undefined, {
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: LEGACY_VERSION,
        capabilities,
        clientInfo: { name: "raw", version: "1" },
      },
    });
    expect(initialize.status).toBe(200);
    await initialize.body?.cancel();
    const session = initialize.headers.get("mcp-session-id") ?? undefined;
    const opened = new RawSession(url, bearer, session);
    const initialized = await opened.post({ jsonrpc: "2.0", method: "notifications/initialized" });
    expect(initialized.status).toBe(202);
    return opened;
  }

  /** POSTs `body` on this session, or on `session` when given (another agent's, say). */
  post(body: unknown, session = this.session): Promise<Response> {
    return post(this.url, this.bearer, session, body);
  }

  /** Starts a tool call; its stream's messages come from the returned reader. */
  async call(id: number, name: string, args: Record<string, unknown>) {
    const response = await this.post({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name, arguments: args },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    return sseMessages(response);
  }
}

/**
 * A v1 SDK client (2025-era) for `agent` at `url`, `setup` run before connecting, that resolves
 * once its GET stream is open: what a backend says outside a call from then on reaches it.
 */
export async function connectListening(
  url: URL,
  agent: string,
  capabilities: ClientCapabilities,
  setup: (client: Client) => void = () => {},
): Promise<Client> {
  let listening!: () => void;
  const streamOpen = new Promise<void>((resolve) => {
    listening = resolve;
  });
  const bearer = await token(agent);
  const transport = new StreamableHTTPClientTransport(url, {
    fetch: async (input, init) => {
      const response = await gatewayFetch(input, init);
      if (init?.method === "GET" && response.ok) listening();
      return response;
    },
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  });
  const client = new Client({ name: "listening", version: "1.0.0" }, { capabilities });
  setup(client);
  await client.connect(transport);
  closeAfterTest(client);
  await streamOpen;
  return client;
}

/**
 * A v2 client pinned to 2026-07-28 at `url` that answers elicitations with `answer`, and the
 * text of every body it read.
 */
export async function modernClient(
  url: URL,
  agent: string,
  answer: (params: unknown) => ElicitResult,
) {
  const bodies: Promise<string>[] = [];
  const transport = new ModernTransport(url, {
    fetch: async (input, init) => {
      const response = await gatewayFetch(input, init);
      bodies.push(response.clone().text());
      return response;
    },
    requestInit: { headers: { authorization: `Bearer ${await token(agent)}` } },
  });
  const client = new ModernClient(
    { name: "modern", version: "1.0.0" },
    {
      capabilities: { elicitation: { form: {}, url: {} } },
      versionNegotiation: { mode: { pin: MODERN } },
    },
  );
  client.setRequestHandler("elicitation/create", async (request) => answer(request.params));
  await client.connect(transport);
  closeAfterTest(client);
  return { client, bodies: async () => (await Promise.all(bodies)).join("\n") };
}

/**
 * A raw 2026-07-28 tools/call at `url`, as a client sends it (envelope in `_meta`, method and name
 * in headers), with `params` beside the name; its HTTP status, and every message of the answer,
 * whether it came as JSON or as SSE, the call's own answer spread on top. Under `env` (a copy with
 * other settings) it goes to the Worker's handler with that environment.
 */
export async function modernCall(
  url: URL,
  agent: string,
  name: string,
  params: Record<string, unknown>,
  options: { meta?: Record<string, unknown>; env?: Env } = {},
) {
  const request = new Request(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${await token(agent)}`,
      "mcp-protocol-version": MODERN,
      "mcp-method": "tools/call",
      "mcp-name": name,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: {
        name,
        ...params,
        _meta: {
          ...options.meta,
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": { elicitation: { form: {} } },
        },
      },
    }),
  });
  let body: string;
  let response: Response;
  if (options.env) {
    const ctx = createExecutionContext();
    response = await worker.fetch(request, options.env, ctx);
    body = await response.text();
    await waitOnExecutionContext(ctx);
  } else {
    response = await exports.default.fetch(request);
    body = await response.text();
  }
  const sse = response.headers.get("content-type")?.includes("text/event-stream") ?? false;
  const messages: Message[] = sse
    ? body
        .split("\n")
        .filter((line) => line.startsWith("data: "))
        .map((line) => JSON.parse(line.slice(6)))
    : [JSON.parse(body)];
  const answer = messages.find((m) => m.id === 7);
  if (!answer) throw new Error(`no answer in: ${body}`);
  return { ...answer, status: response.status, sse, messages };
}
