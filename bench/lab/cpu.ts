/**
 * The gateway's own CPU per call, piece by piece, without I/O, in Node:
 * `node bench/lab/cpu.ts [--ms 1000] [--profile]` prints one JSON document. The lab (lab.ts) runs
 * it in a child process so its JIT and heap are its own.
 *
 * Node can load only the proxy's pure modules (auth, the token cache, policy, scopes, origin, tool
 * names, the assertion signer, the hot path `fast-path.ts` and the direct backend request
 * `direct.ts`): the rest imports `cloudflare:workers` and bindings. The hot path is measured as
 * built; beside it, as the baseline, the SDK objects it replaces, built from the same SDK calls
 * the gateway makes on its slow path: a per-request `Server` behind `createMcpHandler` answering
 * one request, and a per-backend-call `Client` with the cached era verdict. Both backend figures
 * talk to an in-process stub that replays a real SDK backend's answer.
 * The proxy itself, as built, is measured in workerd by cpu-per-call.ts (CPU of the workerd
 * process under load, against a pass-through Worker doing the same I/O).
 *
 * These are Node (V8) figures; workerd runs the same JavaScript on the same engine, with native
 * HTTP, fetch and streams around it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  Client,
  type DiscoverResult,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  createMcpHandler,
  McpServer,
  PROTOCOL_VERSION_META_KEY,
  Server,
} from "@modelcontextprotocol/server";
import { createLocalJWKSet } from "jose";
import { createAssertionSigner } from "../../common/assertion.ts";
import { registerEcho } from "../../common/echo.ts";
import { ensureKeys } from "../../keys/generate.ts";
import { mintToken } from "../../keys/mint.ts";
import { ensureProxyKey } from "../../keys/proxy-key.ts";
import { fastRequest, serveFast } from "../../workers/proxy/src/agent-side/hot-path.ts";
import { directRequest, MODERN_REVISION } from "../../workers/proxy/src/backend-side/direct.ts";
import { extractBearer, verifyAgentToken } from "../../workers/proxy/src/core/auth.ts";
import { messagesOf } from "../../workers/proxy/src/core/envelope.ts";
import { splitToolName } from "../../workers/proxy/src/core/names.ts";
import { originAllowed } from "../../workers/proxy/src/core/origin.ts";
import { allows, parsePolicy, serversFor } from "../../workers/proxy/src/core/policy.ts";
import { missingScope } from "../../workers/proxy/src/core/scopes.ts";
import { cachingVerifier } from "../../workers/proxy/src/state/token-cache.ts";
import { PROTOCOL_VERSION } from "../rpc.ts";
import { type CpuFigure, measure, profiled, StubBackend } from "./cpu-measure.ts";
import type { ProfileSummary } from "./profile.ts";

const AGENT = "bench";
const SERVER_INFO = { name: "mcpcp", version: "0.1.0" };
const ISSUER = "https://mcpcp";
const AUDIENCE = "mcpcp-server";

const REQUEST_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": PROTOCOL_VERSION,
};

export interface CpuReport {
  runtime: string;
  figures: Record<string, CpuFigure>;
  /** The gateway's own work per tools/call to a networked backend, as the sum of its parts. */
  sumOfPartsUs: number;
  /** The same with the SDK server and client the hot path replaces (the gateway before it). */
  sdkSumOfPartsUs: number;
  profile?: { sdkServerPerRequest: ProfileSummary; sdkClientCall: ProfileSummary };
}

/** Measures everything; `budgetMs` is per figure. */
export async function measureCpu(budgetMs: number, profile: boolean): Promise<CpuReport> {
  const keysDir = await mkdtemp(join(tmpdir(), "mcpcp-bench-cpu-"));
  try {
    const keys = await ensureKeys({ dir: keysDir });
    const proxyKey = await ensureProxyKey({ dir: keysDir });
    const token = await mintToken({ agent: AGENT, keysDir, ttlSeconds: 3600 });
    const jwks = keys.jwks as Parameters<typeof createLocalJWKSet>[0];
    const agentKeys = createLocalJWKSet(jwks);
    const signer = await createAssertionSigner(proxyKey.signingKey);
    const policy = parsePolicy(JSON.stringify({ [AGENT]: { mcp1: "*", mcp2: "*", mcp3: "*" } }), [
      "mcp1",
      "mcp2",
      "mcp3",
    ]);
    if (!policy.ok) throw new Error(policy.error);
    const verifyOptions = { issuer: ISSUER, audience: AUDIENCE };
    const verified = await verifyAgentToken(token, agentKeys, verifyOptions);
    if (!verified.ok) throw new Error(verified.detail);
    const identity = verified.identity;

    const callBody = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "mcp2_echo", arguments: { message: "bench" } },
    });
    const parsedCall = JSON.parse(callBody) as unknown;
    const url = new URL("http://127.0.0.1:9003/mcp");

    // The gateway's server side, replicated: a Server per request whose tools/call answers at once.
    const gatewayLike = createMcpHandler(() => {
      const server = new Server(
        { name: "mcpcp", version: "0.1.0" },
        { capabilities: { tools: {} }, instructions: "MCPCP gateway (bench replica)." },
      );
      server.setRequestHandler("tools/list", async () => ({ tools: [] }));
      server.setRequestHandler("tools/call", async () => ({
        content: [{ type: "text", text: "Echo: bench" }],
      }));
      return server;
    });
    const serverRequest = async () => {
      const response = await gatewayLike.fetch(
        new Request(url, { method: "POST", headers: REQUEST_HEADERS, body: callBody }),
      );
      const text = await response.text();
      if (!text.includes("Echo: bench")) throw new Error(`server replica answered: ${text}`);
    };

    // The gateway's client side: one Client per backend call, era verdict from the first call.
    const echoResult = { content: [{ type: "text", text: "Echo: bench" }] };
    const fastPathRequest = (headers: Headers, body: string) => async () => {
      const request = fastRequest(headers, JSON.parse(body));
      if (!request) throw new Error("the hot path refused the bench request");
      // Each agent request brings its own signal, as `request.signal` does in the Worker.
      const signal = new AbortController().signal;
      const response = await serveFast(request, async () => echoResult, SERVER_INFO, signal);
      const text = await response.text();
      if (!text.includes("Echo: bench")) throw new Error(`hot path answered: ${text}`);
    };
    const fastPath = fastPathRequest(new Headers(REQUEST_HEADERS), callBody);
    const modernBody = JSON.stringify({
      ...(parsedCall as object),
      params: {
        name: "mcp2_echo",
        arguments: { message: "bench" },
        _meta: {
          [PROTOCOL_VERSION_META_KEY]: MODERN_REVISION,
          [CLIENT_INFO_META_KEY]: { name: "bench", version: "1" },
          [CLIENT_CAPABILITIES_META_KEY]: {},
        },
      },
    });
    const fastPathModern = fastPathRequest(
      new Headers({
        ...REQUEST_HEADERS,
        "mcp-protocol-version": MODERN_REVISION,
        "mcp-method": "tools/call",
        "mcp-name": "mcp2_echo",
      }),
      modernBody,
    );
    const cachedVerify = cachingVerifier(agentKeys, verifyOptions);

    const stub = new StubBackend();
    const backendUrl = new URL("http://mcp2.stub/mcp");
    let prior: { kind: "modern"; discover: DiscoverResult } | { kind: "legacy" } | undefined;
    const clientCall = async () => {
      const client = new Client(
        { name: "mcpcp-proxy", version: "0.1.0" },
        { versionNegotiation: { mode: "auto" } },
      );
      // As the proxy builds it: who is calling is added by its fetch (`fetchFor`), not here.
      const transport = new StreamableHTTPClientTransport(backendUrl, { fetch: stub.fetch });
      await client.connect(transport, prior ? { timeout: 10_000, prior } : { timeout: 10_000 });
      if (!prior) {
        const discover = client.getDiscoverResult();
        prior = discover ? { kind: "modern", discover } : { kind: "legacy" };
      }
      const result = await client.callTool({ name: "echo", arguments: { message: "bench" } });
      await client.close();
      if (JSON.stringify(result).indexOf("Echo: bench") < 0) throw new Error("stub answered wrong");
    };
    await clientCall();
    const stubBackend = { id: "mcp2", url: backendUrl, fetch: stub.fetch };
    const directCall = async () => {
      const result = await directRequest(
        stubBackend,
        "tools/call",
        { name: "echo", arguments: { message: "bench" } },
        { timeoutMs: 10_000, clientInfo: { name: "mcpcp-proxy", version: "0.1.0" } },
      );
      if (JSON.stringify(result).indexOf("Echo: bench") < 0) throw new Error("stub answered wrong");
    };
    const stubCall = async () =>
      (
        await stub.fetch(backendUrl, {
          method: "POST",
          headers: REQUEST_HEADERS,
          body: callBody.replace("mcp2_echo", "echo"),
        })
      ).text();

    const realBackend = createMcpHandler(() => {
      const server = new McpServer({ name: "mcp2", version: "0.1.0" });
      registerEcho(server);
      return server;
    });
    const backendCall = async () =>
      (
        await realBackend.fetch(
          new Request(backendUrl, {
            method: "POST",
            headers: REQUEST_HEADERS,
            body: callBody.replace("mcp2_echo", "echo"),
          }),
        )
      ).text();

    const figures: Record<string, CpuFigure> = {};
    const run = async (name: string, op: () => unknown) => {
      figures[name] = await measure(op, budgetMs);
    };
    await run("jwtVerify", () => verifyAgentToken(token, agentKeys, verifyOptions));
    await run("jwtVerifyCached", () => cachedVerify(token));
    await run("jwtVerifyKeyImportedPerCall", () =>
      verifyAgentToken(token, createLocalJWKSet(jwks), verifyOptions),
    );
    await run("assertionSign", () => signer.sign(AGENT, "mcp2"));
    await run("decide", () => {
      originAllowed(undefined, url, []);
      extractBearer(`Bearer ${token}`, url);
      missingScope(messagesOf(parsedCall), identity.scopes);
      const target = splitToolName("mcp2_echo");
      if (!target || !allows(policy.value, AGENT, target.server, target.tool)) throw new Error();
      serversFor(policy.value, AGENT);
    });
    await run("jsonParseBody", () => JSON.parse(callBody));
    await run("sdkServerPerRequest", serverRequest);
    await run("fastPathPerRequest", fastPath);
    await run("fastPathPerRequestModern", fastPathModern);
    await run("stubCall", stubCall);
    await run("sdkClientCall", clientCall);
    await run("directCall", directCall);
    await run("sdkBackendCall", backendCall);

    const cpu = (name: string) => figures[name]?.cpuUs ?? Number.NaN;
    const report: CpuReport = {
      runtime: `node ${process.version}`,
      figures,
      sumOfPartsUs: round1(
        cpu("jwtVerifyCached") +
          cpu("decide") +
          cpu("jsonParseBody") +
          cpu("fastPathPerRequest") +
          cpu("assertionSign") +
          cpu("directCall") -
          cpu("stubCall"),
      ),
      sdkSumOfPartsUs: round1(
        cpu("jwtVerifyCached") +
          cpu("decide") +
          cpu("jsonParseBody") +
          cpu("sdkServerPerRequest") +
          cpu("assertionSign") +
          cpu("sdkClientCall") -
          cpu("stubCall"),
      ),
    };
    if (profile) {
      const ms = Math.max(500, budgetMs);
      report.profile = {
        sdkServerPerRequest: await profiled(serverRequest, ms),
        sdkClientCall: await profiled(clientCall, ms),
      };
    }
    return report;
  } finally {
    await rm(keysDir, { recursive: true, force: true });
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { ms: { type: "string", default: "1000" }, profile: { type: "boolean" } },
  });
  const report = await measureCpu(Number(values.ms), values.profile === true);
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
