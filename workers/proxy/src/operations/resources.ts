/**
 * Resources through the gateway, aggregated like tools: listings fan out to the agent's whole
 * servers, URIs come back as `<server>+<uri>`, and a read goes to the one backend its URI names.
 */
import {
  ProtocolError,
  ProtocolErrorCode,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplateType,
} from "@modelcontextprotocol/server";
import { prefixToolName, prefixUri, splitUri } from "../core/names.ts";
import { fail } from "../errors.ts";
import { isInvalidParams, type OperationCall } from "./call.ts";
import { aggregate, forwardOne } from "./forward.ts";

export async function listResources(call: OperationCall): Promise<{ resources: Resource[] }> {
  return {
    resources: await aggregate<Resource>(call, "resources/list", "resources", (r, id) => ({
      ...r,
      uri: prefixUri(id, r.uri),
      name: prefixToolName(id, r.name),
    })),
  };
}

export async function listResourceTemplates(
  call: OperationCall,
): Promise<{ resourceTemplates: ResourceTemplateType[] }> {
  return {
    resourceTemplates: await aggregate<ResourceTemplateType>(
      call,
      "resources/templates/list",
      "resourceTemplates",
      (t, id) => ({
        ...t,
        uriTemplate: prefixUri(id, t.uriTemplate),
        name: prefixToolName(id, t.name),
      }),
    ),
  };
}

export async function readResource(
  call: OperationCall,
  params: { uri: string },
): Promise<ReadResourceResult> {
  const { uri } = params;
  const target = splitUri(uri);
  const notFound = { kind: "unknown_resource", uri } as const;
  if (!target) return fail(notFound);
  const result = (await forwardOne(call, target.server, notFound, async (ask) => {
    try {
      return await ask("resources/read", { uri: target.uri });
    } catch (e) {
      // A read names nothing but its URI, so invalid params can only mean that URI (-32002 is
      // the older code for the same; see `isInvalidParams`), and a server without resources
      // (-32601) has none to read.
      const missing =
        isInvalidParams(e) ||
        (e instanceof ProtocolError &&
          (e.code === ProtocolErrorCode.ResourceNotFound ||
            e.code === ProtocolErrorCode.MethodNotFound));
      if (missing) fail(notFound);
      throw e;
    }
  })) as ReadResourceResult;
  return {
    ...result,
    contents: result.contents.map((c) => ({ ...c, uri: prefixUri(target.server, c.uri) })),
  };
}

/**
 * A 2025 session's subscription to one resource, or its end: sent to the backend its URI names,
 * on the agent's upstream session, so that the backend's `notifications/resources/updated`
 * comes on that session's GET stream, which the agent's own GET stream relays
 * (`backend-side/server-stream.ts`).
 */
export async function subscribeResource(
  call: OperationCall,
  method: "resources/subscribe" | "resources/unsubscribe",
  params: { uri: string },
): Promise<Record<string, never>> {
  const { uri } = params;
  const target = splitUri(uri);
  const notFound = { kind: "unknown_resource", uri } as const;
  if (!target) return fail(notFound);
  await forwardOne(call, target.server, notFound, async (ask) => {
    try {
      return await ask(method, { uri: target.uri });
    } catch (e) {
      if (
        isInvalidParams(e) ||
        (e instanceof ProtocolError && e.code === ProtocolErrorCode.ResourceNotFound)
      ) {
        fail(notFound);
      }
      throw e;
    }
  });
  return {};
}
