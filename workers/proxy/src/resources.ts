/**
 * Resources and prompts through the gateway, aggregated like tools: listings fan out to the
 * agent's servers, resource URIs come back as `<server>+<uri>` and prompt names as
 * `<server>_<name>`, and a read or get goes to the one backend its name points at.
 *
 * Policy: resources and prompts are not tools, so only a whole-server grant (`"*"`) reaches
 * them; a grant that lists tools one by one shows none. What the agent may not reach is answered
 * exactly like what does not exist.
 */
import {
  type GetPromptResult,
  type Prompt,
  ProtocolError,
  ProtocolErrorCode,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplateType,
  type Server,
} from "@modelcontextprotocol/server";
import { type Ask, type CallLimits, type ListMethod, listAll, withBackend } from "./backends.ts";
import type { GatewayConfig } from "./config.ts";
import { fanOut } from "./fan-out.ts";
import type { Limits } from "./gateway.ts";
import { grantsAll, serversFor } from "./policy.ts";
import { prefixToolName, prefixUri, splitToolName, splitUri } from "./tool-names.ts";

/** The servers whose resources and prompts `agent` may see. */
function wholeServers(config: GatewayConfig, agent: string): string[] {
  return serversFor(config.policy, agent).filter((id) => grantsAll(config.policy, agent, id));
}

/**
 * One listing across the servers `agent` holds whole: each backend's full list (following its
 * cursors), renamed for the agent, in server order.
 */
function aggregate<T>(
  config: GatewayConfig,
  agent: string,
  limits: CallLimits,
  method: ListMethod,
  key: string,
  rename: (item: T, server: string) => T,
): Promise<T[]> {
  return fanOut(config, agent, wholeServers(config, agent), limits, key, async (ask, id) =>
    (await listAll<T>(ask, method, key)).map((item) => rename(item, id)),
  );
}

/** Registers resources/list, resources/templates/list and resources/read for `agent`. */
export function registerResources(
  server: Server,
  config: GatewayConfig,
  agent: string,
  limits: Limits,
): void {
  server.setRequestHandler("resources/list", async (_request, ctx) => ({
    resources: await aggregate<Resource>(
      config,
      agent,
      limits.list(ctx.mcpReq.signal),
      "resources/list",
      "resources",
      (r, id) => ({ ...r, uri: prefixUri(id, r.uri), name: prefixToolName(id, r.name) }),
    ),
  }));

  server.setRequestHandler("resources/templates/list", async (_request, ctx) => ({
    resourceTemplates: await aggregate<ResourceTemplateType>(
      config,
      agent,
      limits.list(ctx.mcpReq.signal),
      "resources/templates/list",
      "resourceTemplates",
      (t, id) => ({
        ...t,
        uriTemplate: prefixUri(id, t.uriTemplate),
        name: prefixToolName(id, t.name),
      }),
    ),
  }));

  server.setRequestHandler("resources/read", async (request, ctx) => {
    const uri = request.params.uri;
    const target = splitUri(uri);
    if (!target) throw unknownResource(uri);
    const result = (await forwardOne(
      config,
      agent,
      target.server,
      limits.call(ctx.mcpReq.signal),
      unknownResource(uri),
      (ask) => ask("resources/read", { uri: target.uri }),
    )) as ReadResourceResult;
    return {
      ...result,
      contents: result.contents.map((c) => ({ ...c, uri: prefixUri(target.server, c.uri) })),
    };
  });
}

/** Registers prompts/list and prompts/get for `agent`. */
export function registerPrompts(
  server: Server,
  config: GatewayConfig,
  agent: string,
  limits: Limits,
): void {
  server.setRequestHandler("prompts/list", async (_request, ctx) => ({
    prompts: await aggregate<Prompt>(
      config,
      agent,
      limits.list(ctx.mcpReq.signal),
      "prompts/list",
      "prompts",
      (p, id) => ({ ...p, name: prefixToolName(id, p.name) }),
    ),
  }));

  server.setRequestHandler("prompts/get", async (request, ctx) => {
    const name = request.params.name;
    const target = splitToolName(name);
    if (!target) throw unknownPrompt(name);
    return (await forwardOne(
      config,
      agent,
      target.server,
      limits.call(ctx.mcpReq.signal),
      unknownPrompt(name),
      (ask) =>
        ask("prompts/get", {
          name: target.tool,
          ...(request.params.arguments ? { arguments: request.params.arguments } : {}),
        }),
    )) as GetPromptResult;
  });
}

/**
 * Sends one read or get to the server its name points at, if `agent` holds that server whole;
 * anything else, and the backend's own "not found", is answered with `notFound`.
 */
async function forwardOne<T>(
  config: GatewayConfig,
  agent: string,
  server: string,
  limits: CallLimits,
  notFound: ProtocolError,
  ask: (ask: Ask) => Promise<T>,
): Promise<T> {
  const backend = config.backends.get(server);
  if (!backend || !grantsAll(config.policy, agent, server)) throw notFound;
  try {
    return await withBackend(backend, agent, config.signer, limits, ask);
  } catch (e) {
    throw notFoundOr(e, notFound);
  }
}

function unknownResource(uri: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidParams, `Resource ${uri} not found`);
}

function unknownPrompt(name: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidParams, `Prompt ${name} not found`);
}

/**
 * A backend's "not found" becomes ours, under the agent's name for the thing, so a missing and a
 * hidden resource or prompt read the same. Any other JSON-RPC error passes through; a dead backend
 * is an internal error that names nothing but the failure.
 */
function notFoundOr(e: unknown, notFound: ProtocolError): ProtocolError {
  if (e instanceof ProtocolError) {
    const missing =
      e.code === ProtocolErrorCode.ResourceNotFound ||
      (e.code === ProtocolErrorCode.InvalidParams && /not found|unknown/i.test(e.message));
    if (missing) return notFound;
    return new ProtocolError(e.code, e.message, e.data);
  }
  return new ProtocolError(ProtocolErrorCode.InternalError, "The server holding it is unavailable");
}
