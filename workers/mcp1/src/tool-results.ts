/**
 * Turns BattleSession answers into MCP tool results: a sentence a model can read, plus the same
 * facts as `structuredContent` for programs. A refusal becomes `isError: true`, not a JSON-RPC
 * error: the tool ran and the model can act on the reason (MCP spec, "Tools" → "Error Handling").
 */
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { AppendResult } from "../../../durable-objects/battle-session.ts";

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
  const text =
    event.kind === "result"
      ? `Recorded result event #${event.seq} in battle "${battle.id}": winner ${battle.winner}. ` +
        "The battle is now ended and accepts no further events."
      : `Recorded progress event #${event.seq} in battle "${battle.id}" (status: ${battle.status}).`;
  return {
    content: [{ type: "text", text }],
    structuredContent: { event, battle },
  };
}
