/**
 * Turns BattleSession answers into MCP tool results: a sentence a model can read, plus the same
 * facts as `structuredContent` for programs. A refusal becomes `isError: true`, not a JSON-RPC
 * error: the tool ran and the model can act on the reason (MCP spec, "Tools" → "Error Handling").
 */
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { AppendResult, BattleEvent } from "../../../durable-objects/battle-session.ts";

/** The verified agent first, then what it says of itself: "agent_x (says: green-judge)". */
export function reporter(event: Pick<BattleEvent, "agent" | "reported_by">): string {
  const says = `(says: ${event.reported_by})`;
  return event.agent === null ? `an unverified reporter ${says}` : `${event.agent} ${says}`;
}

/** The tool result for an appendProgress or reportEnd answer. */
export function toToolResult(result: AppendResult): CallToolResult {
  if (!result.ok) {
    return {
      content: [{ type: "text", text: result.error.message }],
      structuredContent: { error: result.error },
      isError: true,
    };
  }
  const { event, battle } = result;
  const again = result.retried
    ? " (already recorded under this report_id; nothing new stored)"
    : "";
  const text =
    event.kind === "result"
      ? `Recorded result event #${event.seq} in battle "${battle.id}": winner ${battle.winner}, ` +
        `reported by ${reporter(event)}${again}. ` +
        "The battle is now ended and accepts no further events."
      : `Recorded progress event #${event.seq} in battle "${battle.id}" (status: ${battle.status}), ` +
        `reported by ${reporter(event)}${again}.`;
  return {
    content: [{ type: "text", text }],
    structuredContent: { event, battle },
  };
}
