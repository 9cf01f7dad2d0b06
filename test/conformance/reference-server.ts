/**
 * MCPCP's reference MCP backend: a 2025-era Streamable HTTP server that implements everything the
 * official conformance suite's SERVER scenarios ask of a server (`@modelcontextprotocol/conformance`
 * 0.1.16, `conformance list --server`), so the suite can be run against it directly and, later,
 * through the gateway's `/servers/<id>/mcp`, and the two results compared.
 *
 * What it offers, under the names the scenarios look for:
 * - tools: `test_simple_text`, `test_image_content`, `test_audio_content`,
 *   `test_embedded_resource`, `test_multiple_content_types`, `test_tool_with_logging`,
 *   `test_tool_with_progress`, `test_error_handling`, `test_sampling` and `test_elicitation`
 *   (server→client requests), `test_elicitation_sep1034_defaults`,
 *   `test_elicitation_sep1330_enums`, `json_schema_2020_12_tool` (SEP-1613) and
 *   `test_reconnection` (SEP-1699: closes its SSE stream mid-call; the result waits in the event
 *   store for the client's `GET` with `Last-Event-ID`);
 * - resources `test://static-text`, `test://static-binary`, `test://watched-resource`
 *   (subscribable), the template `test://template/{id}/data`;
 * - prompts `test_simple_prompt`, `test_prompt_with_arguments`,
 *   `test_prompt_with_embedded_resource`, `test_prompt_with_image`; `completion/complete` for
 *   prompt and template arguments; `logging/setLevel`, which filters the tools' log messages.
 *
 * Transport: one session per `initialize` (`Mcp-Session-Id`), each with its own in-memory event
 * store, a `retry` hint on every SSE stream, any number of concurrent POST streams plus the GET
 * stream, `DELETE` to end a session. `Host` and `Origin` must name loopback (any port), against DNS
 * rebinding; every other header (`Authorization`, `mcpcp-agent`, `mcpcp-assertion`, ...) is
 * ignored, so the gateway's identity headers change nothing.
 *
 * Why the v1 SDK (`@modelcontextprotocol/sdk` 1.32), and its low-level `Server`:
 * - v1 speaks only the 2025 era, with sessions, which is exactly the kind of backend this stands
 *   for. v2 (`@modelcontextprotocol/server`) also answers the 2026-07-28 `server/discover`, so the
 *   gateway would treat it as a stateless 2026 backend and the session path would go untested.
 * - v1's `StreamableHTTPServerTransport` has everything the scenarios exercise: an `EventStore`
 *   hook with replay on `Last-Event-ID`, `retryInterval` for the priming event, `closeSSEStream`
 *   for polling, and `extra.sendRequest`/`extra.sendNotification`, which send sampling,
 *   elicitation, progress and log messages on the POST stream of the tool call they belong to.
 * - The low-level `Server` (rather than `McpServer`) because a reference must put exact shapes on
 *   the wire: tool input schemas and elicitation schemas are written here as the JSON Schema the
 *   scenarios check (`$schema`, `$defs`, `enumNames`, `oneOf`), not derived from zod.
 *
 * Run it alone with Node 22: `node_modules/.bin/node test/conformance/reference-server.ts --port N`.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { hostHeaderValidation, originValidation } from "@modelcontextprotocol/node";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  type EventId,
  type EventStore,
  StreamableHTTPServerTransport,
  type StreamId,
} from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  type GetPromptResult,
  isInitializeRequest,
  isJSONRPCRequest,
  type JSONRPCMessage,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  type LoggingLevel,
  LoggingLevelSchema,
  McpError,
  type Prompt,
  ReadResourceRequestSchema,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplate,
  type ServerNotification,
  type ServerRequest,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  type Tool,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

export interface ReferenceServerOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; loopback by default. */
  host?: string;
}

export interface ReferenceServer {
  /** The MCP endpoint, `http://<host>:<port>/mcp`. */
  url: string;
  /** Ends every session and stops listening. */
  close(): Promise<void>;
}

const SERVER_INFO = { name: "mcpcp-reference", version: "1.0.0" };
/** The `retry` (ms) every SSE stream's priming event carries: how long a client waits to resume. */
const RETRY_MS = 500;
/** Largest POST body read, as the SDK transport's own default. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** `Host` and `Origin` hostnames accepted (port-agnostic), against DNS rebinding. */
const LOOPBACK_HOSTNAMES = ["localhost", "127.0.0.1", "[::1]"];
/** MCP's "resource not found" (2025-11-25 server/resources, "Error Handling"). */
const RESOURCE_NOT_FOUND = -32002;

// ---------------------------------------------------------------------------------------------
// Content the tools, resources and prompts return.

/** A 1x1 opaque red pixel (RGBA ff0000ff), as PNG. */
const RED_PIXEL_PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/** A tenth of a second of silence as WAV: 8 kHz, 8-bit unsigned PCM, mono. */
function silentWav(): string {
  const samples = 800;
  const wav = Buffer.alloc(44 + samples, 0x80); // 0x80 is silence in unsigned 8-bit PCM
  wav.write("RIFF", 0, "ascii");
  wav.writeUInt32LE(36 + samples, 4);
  wav.write("WAVEfmt ", 8, "ascii");
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // channels
  wav.writeUInt32LE(8000, 24); // sample rate
  wav.writeUInt32LE(8000, 28); // byte rate
  wav.writeUInt16LE(1, 32); // block align
  wav.writeUInt16LE(8, 34); // bits per sample
  wav.write("data", 36, "ascii");
  wav.writeUInt32LE(samples, 40);
  return wav.toString("base64");
}
const SILENT_WAV = silentWav();

const text = (value: string) => ({ type: "text" as const, text: value });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// One session's state and the handlers' view of a request.

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

interface Session {
  /** Lowest level sent to the client; undefined until `logging/setLevel`, then all pass. */
  logLevel: LoggingLevel | undefined;
  /** Resource URIs the client subscribed to (`resources/subscribe`). */
  subscriptions: Set<string>;
  /** The client's declared capabilities, known after `initialize`. */
  clientCapabilities: () => { sampling?: object; elicitation?: object } | undefined;
}

const LEVELS = LoggingLevelSchema.options;

/** Sends a log message on the request's stream, unless the session's level filters it out. */
async function log(session: Session, extra: Extra, level: LoggingLevel, data: string) {
  if (session.logLevel && LEVELS.indexOf(level) < LEVELS.indexOf(session.logLevel)) return;
  await extra.sendNotification({
    method: "notifications/message",
    params: { level, logger: SERVER_INFO.name, data },
  });
}

// ---------------------------------------------------------------------------------------------
// Tools. Each is its listing (name, description, JSON Schema as sent) and what a call does.

interface ToolDefinition {
  tool: Tool;
  call: (args: Record<string, unknown>, session: Session, extra: Extra) => Promise<CallToolResult>;
}

const NO_ARGUMENTS = { type: "object" as const, properties: {} };

/** The schema of a tool whose only arguments are required strings. */
function stringArguments(...names: string[]): Tool["inputSchema"] {
  return {
    type: "object",
    properties: Object.fromEntries(names.map((name) => [name, { type: "string" }])),
    required: names,
  };
}

/** A tool result that reports a failure inside the tool (MCP's tool-error channel). */
function toolError(message: string): CallToolResult {
  return { content: [text(message)], isError: true };
}

/** Asks the client for input (`elicitation/create`) on the tool call's stream; summarises it. */
async function elicit(
  session: Session,
  extra: Extra,
  message: string,
  requestedSchema: Record<string, unknown>,
): Promise<CallToolResult> {
  if (!session.clientCapabilities()?.elicitation) {
    return toolError("The client does not support elicitation (no `elicitation` capability)");
  }
  const answer = await extra.sendRequest(
    // The schemas are sent exactly as written; the SDK's request type is narrower than the
    // SEP-1330 enum shapes (enumNames, oneOf) the scenario checks, hence the cast.
    { method: "elicitation/create", params: { message, requestedSchema } } as ServerRequest,
    ElicitResultSchema,
  );
  return {
    content: [
      text(
        `Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`,
      ),
    ],
  };
}

const TOOLS: ToolDefinition[] = [
  {
    tool: {
      name: "test_simple_text",
      description: "Returns one text block",
      inputSchema: NO_ARGUMENTS,
    },
    call: async () => ({ content: [text("This is a simple text response for testing.")] }),
  },
  {
    tool: {
      name: "test_image_content",
      description: "Returns a 1x1 PNG image",
      inputSchema: NO_ARGUMENTS,
    },
    call: async () => ({
      content: [{ type: "image", data: RED_PIXEL_PNG, mimeType: "image/png" }],
    }),
  },
  {
    tool: {
      name: "test_audio_content",
      description: "Returns a short silent WAV",
      inputSchema: NO_ARGUMENTS,
    },
    call: async () => ({ content: [{ type: "audio", data: SILENT_WAV, mimeType: "audio/wav" }] }),
  },
  {
    tool: {
      name: "test_embedded_resource",
      description: "Returns an embedded text resource",
      inputSchema: NO_ARGUMENTS,
    },
    call: async () => ({
      content: [
        {
          type: "resource",
          resource: {
            uri: "test://embedded-resource",
            mimeType: "text/plain",
            text: "This is an embedded resource content.",
          },
        },
      ],
    }),
  },
  {
    tool: {
      name: "test_multiple_content_types",
      description: "Returns text, an image and an embedded resource",
      inputSchema: NO_ARGUMENTS,
    },
    call: async () => ({
      content: [
        text("Multiple content types test:"),
        { type: "image", data: RED_PIXEL_PNG, mimeType: "image/png" },
        {
          type: "resource",
          resource: {
            uri: "test://mixed-content-resource",
            mimeType: "application/json",
            text: JSON.stringify({ test: "data", value: 123 }),
          },
        },
      ],
    }),
  },
  {
    tool: {
      name: "test_tool_with_logging",
      description: "Sends three info log messages while it runs",
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, session, extra) => {
      await log(session, extra, "info", "Tool execution started");
      await sleep(50);
      await log(session, extra, "info", "Tool processing data");
      await sleep(50);
      await log(session, extra, "info", "Tool execution completed");
      return { content: [text("Logging test completed")] };
    },
  },
  {
    tool: {
      name: "test_tool_with_progress",
      description: "Reports progress 0, 50, 100 of 100 under the request's progress token",
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, _session, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (progress > 0) await sleep(50);
        if (progressToken === undefined) continue;
        await extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken, progress, total: 100, message: `${progress}% done` },
        });
      }
      return { content: [text("Progress test completed")] };
    },
  },
  {
    tool: {
      name: "test_error_handling",
      description: "Always fails, as a tool error",
      inputSchema: NO_ARGUMENTS,
    },
    call: async () => toolError("This tool intentionally returns an error for testing"),
  },
  {
    tool: {
      name: "test_sampling",
      description: "Asks the client's LLM (sampling/createMessage) to answer a prompt",
      inputSchema: stringArguments("prompt"),
    },
    call: async (args, session, extra) => {
      const { prompt } = z.object({ prompt: z.string() }).parse(args);
      if (!session.clientCapabilities()?.sampling) {
        return toolError("The client does not support sampling (no `sampling` capability)");
      }
      const answer = await extra.sendRequest(
        {
          method: "sampling/createMessage",
          params: { messages: [{ role: "user", content: text(prompt) }], maxTokens: 100 },
        },
        CreateMessageResultSchema,
      );
      const reply =
        answer.content.type === "text" ? answer.content.text : `[${answer.content.type}]`;
      return { content: [text(`LLM response: ${reply}`)] };
    },
  },
  {
    tool: {
      name: "test_elicitation",
      description: "Asks the user (elicitation/create) for a username and an email address",
      inputSchema: stringArguments("message"),
    },
    call: async (args, session, extra) => {
      const { message } = z.object({ message: z.string() }).parse(args);
      return elicit(session, extra, message, {
        type: "object",
        properties: {
          username: { type: "string", description: "User's response" },
          email: { type: "string", description: "User's email address" },
        },
        required: ["username", "email"],
      });
    },
  },
  {
    tool: {
      name: "test_elicitation_sep1034_defaults",
      description: "Elicits one field of each primitive type, each with a default (SEP-1034)",
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, session, extra) =>
      elicit(session, extra, "Please review and update the form fields with defaults", {
        type: "object",
        properties: {
          name: { type: "string", description: "User name", default: "John Doe" },
          age: { type: "integer", description: "User age", default: 30 },
          score: { type: "number", description: "User score", default: 95.5 },
          status: {
            type: "string",
            description: "User status",
            enum: ["active", "inactive", "pending"],
            default: "active",
          },
          verified: { type: "boolean", description: "Verification status", default: true },
        },
        required: [],
      }),
  },
  {
    tool: {
      name: "test_elicitation_sep1330_enums",
      description: "Elicits the five enum shapes of SEP-1330",
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, session, extra) =>
      elicit(session, extra, "Please pick from each kind of enum", {
        type: "object",
        properties: {
          untitledSingle: {
            type: "string",
            description: "Untitled single-select",
            enum: ["option1", "option2", "option3"],
          },
          titledSingle: {
            type: "string",
            description: "Titled single-select",
            oneOf: [
              { const: "value1", title: "First Option" },
              { const: "value2", title: "Second Option" },
              { const: "value3", title: "Third Option" },
            ],
          },
          legacyEnum: {
            type: "string",
            description: "Legacy titled single-select (enumNames, deprecated)",
            enum: ["opt1", "opt2", "opt3"],
            enumNames: ["Option One", "Option Two", "Option Three"],
          },
          untitledMulti: {
            type: "array",
            description: "Untitled multi-select",
            items: { type: "string", enum: ["option1", "option2", "option3"] },
          },
          titledMulti: {
            type: "array",
            description: "Titled multi-select",
            items: {
              anyOf: [
                { const: "value1", title: "First Choice" },
                { const: "value2", title: "Second Choice" },
                { const: "value3", title: "Third Choice" },
              ],
            },
          },
        },
        required: [],
      }),
  },
  {
    tool: {
      name: "json_schema_2020_12_tool",
      description: "Tool with JSON Schema 2020-12 features",
      inputSchema: {
        $schema: "https://json-schema.org/draft/2020-12/schema",
        type: "object",
        $defs: {
          address: {
            type: "object",
            properties: { street: { type: "string" }, city: { type: "string" } },
          },
        },
        properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
        additionalProperties: false,
      },
    },
    call: async (args) => ({ content: [text(`Received: ${JSON.stringify(args)}`)] }),
  },
  {
    tool: {
      name: "test_reconnection",
      description: "Closes its SSE stream mid-call; the result arrives when the client resumes",
      inputSchema: NO_ARGUMENTS,
    },
    call: async (_args, _session, extra) => {
      // The transport offers closeSSEStream only when the stream is resumable: an event store, and
      // a request whose MCP-Protocol-Version is 2025-11-25 or later (older clients got no priming
      // event id to resume from). Otherwise the result simply comes on the open stream.
      await sleep(50);
      extra.closeSSEStream?.();
      await sleep(100);
      return { content: [text("Reconnection test completed")] };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Resources and prompts.

const RESOURCES: (Resource & { read: () => ReadResourceResult["contents"][number] })[] = [
  {
    uri: "test://static-text",
    name: "static-text",
    description: "A static text resource",
    mimeType: "text/plain",
    read: () => ({
      uri: "test://static-text",
      mimeType: "text/plain",
      text: "This is the content of the static text resource.",
    }),
  },
  {
    uri: "test://static-binary",
    name: "static-binary",
    description: "A static binary resource (a 1x1 PNG)",
    mimeType: "image/png",
    read: () => ({ uri: "test://static-binary", mimeType: "image/png", blob: RED_PIXEL_PNG }),
  },
  {
    uri: "test://watched-resource",
    name: "watched-resource",
    description: "A resource clients may subscribe to",
    mimeType: "text/plain",
    read: () => ({
      uri: "test://watched-resource",
      mimeType: "text/plain",
      text: "This resource can be watched for updates.",
    }),
  },
];

const TEMPLATE: ResourceTemplate = {
  uriTemplate: "test://template/{id}/data",
  name: "template-data",
  description: "Data for any id",
  mimeType: "application/json",
};
const TEMPLATE_MATCH = /^test:\/\/template\/([^/]+)\/data$/;

function readResource(uri: string): ReadResourceResult {
  const resource = RESOURCES.find((r) => r.uri === uri);
  if (resource) return { contents: [resource.read()] };
  const id = TEMPLATE_MATCH.exec(uri)?.[1];
  if (id !== undefined) {
    const data = { id, templateTest: true, data: `Data for ID: ${id}` };
    return { contents: [{ uri, mimeType: "application/json", text: JSON.stringify(data) }] };
  }
  throw new McpError(RESOURCE_NOT_FOUND, `Resource ${uri} not found`, { uri });
}

interface PromptDefinition {
  prompt: Prompt;
  get: (args: Record<string, string>) => GetPromptResult;
}

const PROMPTS: PromptDefinition[] = [
  {
    prompt: { name: "test_simple_prompt", description: "A prompt without arguments" },
    get: () => ({
      messages: [{ role: "user", content: text("This is a simple prompt for testing.") }],
    }),
  },
  {
    prompt: {
      name: "test_prompt_with_arguments",
      description: "A prompt with two required arguments",
      arguments: [
        { name: "arg1", description: "First test argument", required: true },
        { name: "arg2", description: "Second test argument", required: true },
      ],
    },
    get: ({ arg1, arg2 }) => ({
      messages: [
        { role: "user", content: text(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`) },
      ],
    }),
  },
  {
    prompt: {
      name: "test_prompt_with_embedded_resource",
      description: "A prompt that embeds a resource",
      arguments: [{ name: "resourceUri", description: "URI of the resource", required: true }],
    },
    get: ({ resourceUri }) => ({
      messages: [
        {
          role: "user",
          content: {
            type: "resource",
            resource: {
              uri: resourceUri ?? "",
              mimeType: "text/plain",
              text: "Embedded resource content for testing.",
            },
          },
        },
        { role: "user", content: text("Please process the embedded resource above.") },
      ],
    }),
  },
  {
    prompt: { name: "test_prompt_with_image", description: "A prompt with an image" },
    get: () => ({
      messages: [
        { role: "user", content: { type: "image", data: RED_PIXEL_PNG, mimeType: "image/png" } },
        { role: "user", content: text("Please analyze the image above.") },
      ],
    }),
  },
];

/** Suggestions `completion/complete` draws from, by argument name. */
const COMPLETIONS: Record<string, string[]> = {
  arg1: ["paris", "park", "party", "test", "testing"],
  arg2: ["red", "green", "blue"],
  resourceUri: ["test://static-text", "test://static-binary", "test://watched-resource"],
  id: ["1", "123", "42"],
};

// ---------------------------------------------------------------------------------------------
// One MCP server per session.

function buildServer(): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: {
      tools: { listChanged: false },
      resources: { subscribe: true, listChanged: false },
      prompts: { listChanged: false },
      completions: {},
      logging: {},
    },
  });
  const state: Session = {
    logLevel: undefined,
    subscriptions: new Set(),
    clientCapabilities: () => server.getClientCapabilities(),
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: TOOLS.map((t) => t.tool),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args = {} } = request.params;
    const definition = TOOLS.find((t) => t.tool.name === name);
    if (!definition) throw new McpError(ErrorCode.InvalidParams, `Tool ${name} not found`);
    try {
      return await definition.call(args, state, extra);
    } catch (error) {
      // Bad arguments and a failed server→client request are failures of the tool, reported on
      // the tool-error channel (2025-11-25 server/tools, "Error Handling").
      if (error instanceof z.ZodError)
        return toolError(`Invalid arguments: ${z.prettifyError(error)}`);
      return toolError(error instanceof Error ? error.message : String(error));
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: RESOURCES.map(({ read: _read, ...resource }) => resource),
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [TEMPLATE],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (request) =>
    readResource(request.params.uri),
  );
  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    readResource(request.params.uri); // throws for a resource that does not exist
    state.subscriptions.add(request.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    state.subscriptions.delete(request.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: PROMPTS.map((p) => p.prompt),
  }));
  server.setRequestHandler(GetPromptRequestSchema, async (request) => {
    const { name, arguments: args = {} } = request.params;
    const definition = PROMPTS.find((p) => p.prompt.name === name);
    if (!definition) throw new McpError(ErrorCode.InvalidParams, `Prompt ${name} not found`);
    const missing = (definition.prompt.arguments ?? []).filter((a) => a.required && !args[a.name]);
    if (missing.length > 0) {
      const names = missing.map((a) => a.name).join(", ");
      throw new McpError(ErrorCode.InvalidParams, `Missing required arguments: ${names}`);
    }
    return definition.get(args);
  });

  server.setRequestHandler(CompleteRequestSchema, async (request) => {
    const { ref, argument } = request.params;
    const known =
      ref.type === "ref/prompt"
        ? PROMPTS.some((p) => p.prompt.name === ref.name)
        : ref.uri === TEMPLATE.uriTemplate;
    const values = known
      ? (COMPLETIONS[argument.name] ?? []).filter((v) => v.startsWith(argument.value))
      : [];
    return { completion: { values, total: values.length, hasMore: false } };
  });

  server.setRequestHandler(SetLevelRequestSchema, async (request) => {
    state.logLevel = request.params.level;
    return {};
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// Resumability: every SSE event a session sends, kept in memory so a stream can be replayed.

/** The session's SSE events by stream, so a `GET` with `Last-Event-ID` resumes where it broke. */
class MemoryEventStore implements EventStore {
  #next = 0;
  #streamOf = new Map<EventId, StreamId>();
  #streams = new Map<StreamId, { id: EventId; message: JSONRPCMessage }[]>();

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    this.#next += 1;
    const id = `${streamId}.${this.#next}`;
    this.#streamOf.set(id, streamId);
    const events = this.#streams.get(streamId) ?? [];
    events.push({ id, message });
    this.#streams.set(streamId, events);
    return id;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.#streamOf.get(eventId);
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const streamId = this.#streamOf.get(lastEventId);
    if (streamId === undefined) throw new Error(`Unknown Last-Event-ID ${lastEventId}`);
    const events = this.#streams.get(streamId) ?? [];
    const after = events.findIndex((e) => e.id === lastEventId) + 1;
    for (const { id, message } of events.slice(after)) {
      // The priming event the transport stores (`{}`) only marks a resumption point.
      if ("jsonrpc" in message) await send(id, message);
    }
    return streamId;
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP: sessions by `Mcp-Session-Id`, everything else to the session's transport.

function sendRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res
    .writeHead(status, { "content-type": "application/json" })
    .end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code, message } }));
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Starts the reference server and resolves once it listens. */
export async function startReferenceServer(
  options: ReferenceServerOptions = {},
): Promise<ReferenceServer> {
  const host = options.host ?? "127.0.0.1";
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const validHost = hostHeaderValidation(LOOPBACK_HOSTNAMES);
  const validOrigin = originValidation(LOOPBACK_HOSTNAMES);

  /** A new session's transport and server; the session is kept once `initialize` succeeds. */
  async function openSession(): Promise<StreamableHTTPServerTransport> {
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new MemoryEventStore(),
      retryInterval: RETRY_MS,
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await buildServer().connect(transport);
    return transport;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.url ?? "/").split("?", 1)[0] !== "/mcp") {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found: the endpoint is /mcp\n");
      return;
    }
    // Both guards answer 403 themselves (a JSON-RPC error) when they refuse.
    if (!validHost(req, res) || !validOrigin(req, res)) return;

    let body: unknown;
    if (req.method === "POST") {
      const raw = await readBody(req);
      if (raw === undefined) return sendRpcError(res, 413, ErrorCode.InvalidRequest, "Too large");
      try {
        body = JSON.parse(raw);
      } catch {
        return sendRpcError(res, 400, ErrorCode.ParseError, "Parse error: body is not JSON");
      }
    }

    const sessionId = req.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      const transport = sessions.get(sessionId);
      // The SDK's code for an unknown session (the client must initialize again).
      if (!transport) return sendRpcError(res, 404, -32001, "Session not found");
      return transport.handleRequest(req, res, body);
    }
    const messages = Array.isArray(body) ? body : [body];
    if (req.method === "POST" && messages.some(isInitializeRequest)) {
      const transport = await openSession();
      return transport.handleRequest(req, res, body);
    }
    const what = req.method === "POST" && messages.some(isJSONRPCRequest) ? "request" : req.method;
    return sendRpcError(
      res,
      400,
      ErrorCode.InvalidRequest,
      `Bad Request: ${what} without an Mcp-Session-Id; initialize first`,
    );
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        sendRpcError(res, 500, ErrorCode.InternalError, `Internal error: ${String(error)}`);
      } else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/mcp`,
    close: async () => {
      await Promise.all([...sessions.values()].map((t) => t.close().catch(() => {})));
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

// Run as a script: `node test/conformance/reference-server.ts [--port N] [--host H]`.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: { port: { type: "string", default: "0" }, host: { type: "string" } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be a port number, got ${values.port}`);
    process.exit(2);
  }
  const server = await startReferenceServer(
    values.host === undefined ? { port } : { port, host: values.host },
  );
  console.log(`MCPCP reference MCP server listening at ${server.url}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
