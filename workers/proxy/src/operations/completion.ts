/**
 * Completion (`completion/complete`) through `/mcp`: the reference names a prompt (`<server>_name`)
 * or a resource template (`<server>+uri`), so the request goes to that one backend with its own
 * name, under the same rule as prompts and resources: only a whole-server grant reaches it, and
 * what the agent may not reach is answered as what does not exist.
 */
import type { CompleteResult } from "@modelcontextprotocol/server";
import { splitToolName, splitUri } from "../core/names.ts";
import { type Failure, fail } from "../errors.ts";
import type { OperationCall } from "./call.ts";
import { forwardOne } from "./forward.ts";

export interface CompleteParams {
  ref: { type: "ref/prompt"; name: string } | { type: "ref/resource"; uri: string };
  argument: { name: string; value: string };
  context?: { arguments?: Record<string, string> };
}

export async function complete(
  call: OperationCall,
  params: CompleteParams,
): Promise<CompleteResult> {
  const { ref } = params;
  let server: string;
  let backendRef: CompleteParams["ref"];
  let notFound: Failure;
  if (ref.type === "ref/prompt") {
    notFound = { kind: "unknown_prompt", name: ref.name };
    const target = splitToolName(ref.name);
    if (!target) return fail(notFound);
    server = target.server;
    backendRef = { type: "ref/prompt", name: target.tool };
  } else {
    notFound = { kind: "unknown_resource", uri: ref.uri };
    const target = splitUri(ref.uri);
    if (!target) return fail(notFound);
    server = target.server;
    backendRef = { type: "ref/resource", uri: target.uri };
  }
  return (await forwardOne(call, server, notFound, (ask) =>
    ask("completion/complete", { ...params, ref: backendRef }),
  )) as CompleteResult;
}
