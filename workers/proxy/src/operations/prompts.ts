/**
 * Prompts through the gateway, aggregated like tools: names come back as `<server>_<name>`, and a
 * get goes to the one backend its name points at.
 */
import {
  type GetPromptResult,
  type Prompt,
  ProtocolError,
  ProtocolErrorCode,
} from "@modelcontextprotocol/server";
import { prefixToolName, splitToolName } from "../core/names.ts";
import { fail } from "../errors.ts";
import { isInvalidParams, listsName, type OperationCall } from "./call.ts";
import { aggregate, forwardOne } from "./forward.ts";

export async function listPrompts(call: OperationCall): Promise<{ prompts: Prompt[] }> {
  return {
    prompts: await aggregate<Prompt>(call, "prompts/list", "prompts", (p, id) => ({
      ...p,
      name: prefixToolName(id, p.name),
    })),
  };
}

export async function getPrompt(
  call: OperationCall,
  params: { name: string; arguments?: Record<string, string> },
): Promise<GetPromptResult> {
  const { name } = params;
  const target = splitToolName(name);
  const notFound = { kind: "unknown_prompt", name } as const;
  if (!target) return fail(notFound);
  return (await forwardOne(call, target.server, notFound, async (ask) => {
    try {
      return await ask("prompts/get", {
        name: target.tool,
        ...(params.arguments ? { arguments: params.arguments } : {}),
      });
    } catch (e) {
      // A server without prompts (-32601) has none to get. Invalid params may be the name or the
      // arguments: the backend's listing tells which.
      if (e instanceof ProtocolError && e.code === ProtocolErrorCode.MethodNotFound) fail(notFound);
      if (isInvalidParams(e) && !(await listsName(ask, "prompts/list", "prompts", target.tool))) {
        fail(notFound);
      }
      throw e;
    }
  })) as GetPromptResult;
}
