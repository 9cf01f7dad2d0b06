/**
 * Battle events per second on one battle, with none lost: `callers` concurrent clients append
 * `events` progress events to a single battle (one Durable Object, so they serialise there), then
 * the sequence numbers the tool results carry must be exactly 1..events, each once.
 */

import type { Endpoint } from "./endpoint.ts";
import { RpcClient, type RpcReply, toolText } from "./rpc.ts";

export interface BattleFigure {
  battleId: string;
  events: number;
  callers: number;
  seconds: number;
  eventsPerSecond: number;
  /** Calls that did not come back as a recorded event (HTTP, JSON-RPC or tool errors). */
  errors: number;
  /** Sequence numbers in 1..events that no result carried. */
  lost: number;
  duplicates: number;
  firstError?: string;
}

function seqOf(reply: RpcReply): number | undefined {
  const result = reply.message.result as
    | { isError?: boolean; structuredContent?: { event?: { seq?: unknown } } }
    | undefined;
  if (!result || result.isError) return undefined;
  const seq = result.structuredContent?.event?.seq;
  if (typeof seq === "number") return seq;
  // The text says it too: "Recorded progress event #12 in battle ...".
  const match = /event #(\d+)/.exec(toolText(reply));
  return match?.[1] ? Number(match[1]) : undefined;
}

/** Appends `events` events to a fresh battle through `endpoint` with `callers` in parallel. */
export async function battleRate(
  endpoint: Endpoint,
  tool: string,
  events: number,
  callers: number,
): Promise<BattleFigure> {
  const battleId = `bench-${process.pid}-${Date.now()}-${tool}`;
  const client = new RpcClient(endpoint, callers);
  const seqs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  const caller = async (who: number) => {
    while (next < events) {
      const n = next++;
      const reply = await client.call("tools/call", {
        name: tool,
        arguments: {
          battle_id: battleId,
          message: `bench event ${n}`,
          reported_by: `bench caller ${who}`,
          detail: { n },
        },
      });
      const seq = seqOf(reply);
      if (seq === undefined) {
        errors++;
        firstError ??= `HTTP ${reply.status}: ${toolText(reply).slice(0, 300)}`;
      } else {
        seqs.push(seq);
      }
    }
  };
  await Promise.all(Array.from({ length: callers }, (_, who) => caller(who)));
  const seconds = (performance.now() - started) / 1000;
  client.close();
  const seen = new Set(seqs);
  let lost = 0;
  for (let seq = 1; seq <= events; seq++) if (!seen.has(seq)) lost++;
  return {
    battleId,
    events,
    callers,
    seconds,
    eventsPerSecond: seqs.length / seconds,
    errors,
    lost,
    duplicates: seqs.length - seen.size,
    ...(firstError ? { firstError } : {}),
  };
}
