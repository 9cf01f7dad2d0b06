/**
 * Who may write to a battle (docs/design.md, "Battle state (mcp1)", "Ownership"): a plain
 * decision over plain data, made by the BattleSession inside the transaction that stores the
 * event, so the owner it reads is the one the write sees.
 *
 * - A token that lists battles (`battles` claim) reaches only those: it may neither open nor
 *   report on any other, whoever owns it.
 * - A battle not yet opened may be opened by any agent it reaches; that agent is its owner.
 * - The owner may report progress and the end.
 * - An agent its token binds to the battle may report progress; the end only with the role
 *   `judge`.
 * - Anyone else is refused. Refusals name no other agent: the owner's name is not the caller's to
 *   learn, and a message naming a participant could be made to name whoever a forger chose.
 */
import { type BattleClaims, JUDGE_ROLE, reachesBattle } from "../common/battle-claims.ts";

export type Action = "progress" | "end";

export type AccessVerdict = { ok: true } | { ok: false; message: string };

export interface AccessRequest {
  action: Action;
  battleId: string;
  agent: string | null;
  claims: BattleClaims;
  /** The battle's owner: undefined when the battle is not opened yet, null when nobody owns it. */
  owner: string | null | undefined;
}

/** Whether the caller may do `action` on the battle. */
export function decideAccess(request: AccessRequest): AccessVerdict {
  const { action, battleId, agent, claims, owner } = request;
  if (!reachesBattle(claims, battleId)) {
    return refuse(
      `Your token is limited to other battles: it may not open or report on battle "${battleId}".`,
    );
  }
  if (owner === undefined) return { ok: true };
  if (agent !== null && agent === owner) return { ok: true };
  const bound = claims.battles?.includes(battleId) === true;
  if (!bound) {
    return refuse(
      `Battle "${battleId}" belongs to other participants: only the agent that opened it, or an ` +
        "agent whose token names it in its battles claim, may report on it. Nothing was stored.",
    );
  }
  if (action === "end" && claims.battle_role !== JUDGE_ROLE) {
    return refuse(
      `Your token binds you to battle "${battleId}" but not as its judge: you may report its ` +
        "progress; its end is for the agent that opened it or a judge. Nothing was stored.",
    );
  }
  return { ok: true };
}

function refuse(message: string): AccessVerdict {
  return { ok: false, message };
}
