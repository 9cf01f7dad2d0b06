/**
 * Asking several backends the same question at once, for an agent. A backend that fails or is
 * slow drops out of the answer (and into the log); the others are not held back by it.
 */
import { type Ask, type CallLimits, withBackend } from "./backends.ts";
import type { GatewayConfig } from "./config.ts";

/**
 * Runs `collect` against each of `servers` in parallel; returns what each live one answered, in
 * order.
 */
export async function fanOut<T>(
  config: GatewayConfig,
  agent: string,
  servers: readonly string[],
  limits: CallLimits,
  what: string,
  collect: (ask: Ask, server: string) => Promise<T[]>,
): Promise<T[]> {
  const answers = await Promise.allSettled(
    servers.map((id) => {
      const backend = config.backends.get(id);
      if (!backend) return Promise.resolve([]);
      return withBackend(backend, agent, config.signer, limits, (ask) => collect(ask, id));
    }),
  );
  return answers.flatMap((answer, i) => {
    if (answer.status === "fulfilled") return answer.value;
    console.warn(
      JSON.stringify({
        event: "backend_list_failed",
        what,
        server: servers[i],
        agent,
        error: describe(answer.reason),
      }),
    );
    return [];
  });
}

/** A short, log-safe description of a failure. */
export function describe(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).slice(0, 300);
}
