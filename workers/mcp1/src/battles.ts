/**
 * Reaching battles from the Worker: the BattleSession of one battle, the BattleIndex of all, and
 * the checks on the ids and positions that name them in URLs and resource URIs.
 */
import { z } from "zod";
import { INDEX_NAME, LIST_LIMIT_MAX } from "../../../durable-objects/battle-index.ts";
import { LIMITS } from "../../../durable-objects/battle-input.ts";

type Bindings = Pick<Env, "BATTLE" | "BATTLE_INDEX">;

/** The Durable Object that holds battle `id`. */
export function battleSession(env: Bindings, id: string) {
  return env.BATTLE.get(env.BATTLE.idFromName(id));
}

/** The one BattleIndex. */
export function battleIndex(env: Bindings) {
  return env.BATTLE_INDEX.get(env.BATTLE_INDEX.idFromName(INDEX_NAME));
}

/** Whether `id` is a well-formed battle id (the tools' own rule). */
export function isBattleId(id: string): boolean {
  return LIMITS.battleIdPattern.test(id);
}

/** How many battles a list page holds unless asked otherwise. */
export const DEFAULT_LIST_LIMIT = 20;

const seq = z
  .string()
  .regex(/^\d{1,15}$/, "must be a whole number")
  .transform(Number);

/** Query of `GET /api/battles`. */
export const listQuerySchema = z.object({
  status: z.enum(["ongoing", "ended"]).optional(),
  limit: seq
    .pipe(z.number().int().min(1).max(LIST_LIMIT_MAX, `must be at most ${LIST_LIMIT_MAX}`))
    .optional(),
  cursor: z.string().min(1).max(400).optional(),
});

/** Query of `GET /api/battles/:id`: `after`, the last `seq` already seen (0 for all). */
export const stateQuerySchema = z.object({ after: seq.optional() });

/** "field: reason, …" from a zod failure, as the tool errors word it. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) =>
      issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message,
    )
    .join(", ");
}
