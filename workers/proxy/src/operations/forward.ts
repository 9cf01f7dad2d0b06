/**
 * Aggregated listings and single reads for what is not a tool (resources and prompts). Policy:
 * resources and prompts are not tools, so only a whole-server grant (`"*"`) reaches them; a grant
 * that lists tools one by one shows none. What the agent may not reach is answered exactly like
 * what does not exist.
 */
import { ProtocolError } from "@modelcontextprotocol/server";
import { type Ask, type ListMethod, listAll, withBackend } from "../backend-side/backends.ts";
import { grantsAll, serversFor } from "../core/policy.ts";
import { type Failure, fail, GatewayError } from "../errors.ts";
import { callLimits, type OperationCall } from "./call.ts";
import { fanOut } from "./fan-out.ts";

/** The servers whose resources and prompts the agent may see. */
function wholeServers(call: OperationCall): string[] {
  const { config, agent } = call.ctx;
  return serversFor(config.policy, agent).filter((id) => grantsAll(config.policy, agent, id));
}

/**
 * One listing across the servers the agent holds whole: each backend's full list (following its
 * cursors), renamed for the agent, in server order.
 */
export function aggregate<T>(
  call: OperationCall,
  method: ListMethod,
  key: string,
  rename: (item: T, server: string) => T,
): Promise<T[]> {
  return fanOut(call, wholeServers(call), key, async (ask, id) =>
    (await listAll<T>(ask, method, key)).map((item) => rename(item, id)),
  );
}

/**
 * Sends one read or get to `server`, if the agent holds that server whole; else fails with
 * `notFound`. `ask` throws a `GatewayError` itself for what the backend says does not exist; any
 * other JSON-RPC error passes through, a backend past the deadline is a timeout naming it, and a
 * dead backend is an internal error naming nothing but the failure.
 */
export async function forwardOne<T>(
  call: OperationCall,
  server: string,
  notFound: Failure,
  ask: (ask: Ask) => Promise<T>,
): Promise<T> {
  const { ctx } = call;
  const backend = ctx.config.backends.get(server);
  if (!backend || !grantsAll(ctx.config.policy, ctx.agent, server)) return fail(notFound);
  try {
    return await withBackend(backend, ctx, callLimits(call), ask);
  } catch (e) {
    if (e instanceof GatewayError && e.failure.kind === "backend_timeout") {
      call.outcome.ended("backend_timeout");
    }
    if (e instanceof GatewayError) throw e;
    if (e instanceof ProtocolError) {
      return fail({ kind: "backend_error", code: e.code, message: e.message, data: e.data });
    }
    return fail({ kind: "holder_unavailable", server, detail: String(e) });
  }
}
