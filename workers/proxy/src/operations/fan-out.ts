/**
 * Asking several backends the same question at once, for an agent. A backend that fails or is
 * slow drops out of the answer (and into the log); the others are not held back by it.
 */
import { type Ask, withBackend } from "../backend-side/backends.ts";
import { log } from "../core/log.ts";
import { describe } from "../errors.ts";
import { listLimits, type OperationCall } from "./call.ts";

/**
 * Runs `collect` against each of `servers` in parallel; returns what each live one answered, in
 * order.
 */
export async function fanOut<T>(
  call: OperationCall,
  servers: readonly string[],
  what: string,
  collect: (ask: Ask, server: string) => Promise<T[]>,
): Promise<T[]> {
  const { ctx } = call;
  const limits = listLimits(call);
  const answers = await Promise.allSettled(
    servers.map((id) => {
      const backend = ctx.config.backends.get(id);
      if (!backend) return Promise.resolve([]);
      return withBackend(backend, ctx, limits, (ask) => collect(ask, id));
    }),
  );
  return answers.flatMap((answer, i) => {
    if (answer.status === "fulfilled") return answer.value;
    log("warn", "backend_list_failed", {
      what,
      server: servers[i],
      agent: ctx.agent,
      error: describe(answer.reason),
    });
    return [];
  });
}
