/**
 * The two token claims that tie an agent (or an inspector) to battles (docs/design.md, "Battle
 * state (mcp1)" and "Inspection"):
 *
 * - `battles`: an array of battle ids. An agent token with it reaches only those battles (it may
 *   report on them, open them, see them as resources); an inspection token with it sees only
 *   those battles.
 * - `battle_role`: a string; `judge` may report a bound battle's end, any other role only its
 *   progress.
 *
 * One rule for all who read them: the proxy checks an agent token's claims before it signs
 * anything (a malformed one is a refused token), copies them into its assertion to the backend,
 * and mcp1 checks them again on the assertion and on inspection tokens. Plain data in, a tagged
 * result out; no I/O.
 */
import { z } from "zod";

/** A battle id: mcp1's tools, URLs, resource URIs and these claims all use this rule. */
export const BATTLE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Most battles one token may list: a listing reads them one by one, so the list stays short. */
export const MAX_CLAIMED_BATTLES = 100;
/** The role that may report a bound battle's end. */
export const JUDGE_ROLE = "judge";

const battleId = z.string().regex(BATTLE_ID_PATTERN, "must be a battle id");

const claimsSchema = z.object({
  battles: z
    .array(battleId)
    .max(MAX_CLAIMED_BATTLES, `must list at most ${MAX_CLAIMED_BATTLES} battles`)
    .optional(),
  battle_role: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must be 1 to 64 characters from A-Z a-z 0-9 _ . : -")
    .optional(),
});

/** What a verified token says about battles; an absent claim is absent here too. */
export interface BattleClaims {
  /** The only battles the token reaches; absent: not bound (an empty list reaches none). */
  battles?: readonly string[];
  battle_role?: string;
}

/**
 * The `battles` and `battle_role` claims of a verified token's payload, or why they are malformed
 * (for the log: it names the claim and the rule, never echoes the value).
 */
export function readBattleClaims(
  payload: Record<string, unknown>,
): { ok: true; claims: BattleClaims } | { ok: false; detail: string } {
  const parsed = claimsSchema.safeParse({
    battles: payload.battles,
    battle_role: payload.battle_role,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path[0] === "battle_role" ? "battle_role" : "battles";
    return { ok: false, detail: `${where} claim: ${issue?.message ?? "malformed"}` };
  }
  const claims: BattleClaims = {};
  if (parsed.data.battles !== undefined) claims.battles = [...new Set(parsed.data.battles)];
  if (parsed.data.battle_role !== undefined) claims.battle_role = parsed.data.battle_role;
  return { ok: true, claims };
}

/** Whether claims that may list battles let their holder reach battle `id`. */
export function reachesBattle(claims: BattleClaims, id: string): boolean {
  return claims.battles === undefined || claims.battles.includes(id);
}
