/**
 * Latency figures measured as interleaved rounds: in each round every contender makes one request,
 * in an order that rotates from round to round, so drift in the machine's load (other processes,
 * GC, CPU frequency) lands on all of them alike and paired differences cancel it.
 */
import { expectResult, type RpcClient, type RpcReply, toolText } from "./rpc.ts";
import { percentile, type Summary, summarize } from "./stats.ts";

/** One contender: makes one request and returns its latency in ms (throws if the answer is wrong). */
export type Step = () => Promise<number>;

/** Runs `rounds` rounds of `steps` (after `warmup` unrecorded ones); returns each step's samples. */
export async function interleave(
  steps: Record<string, Step>,
  rounds: number,
  warmup: number,
): Promise<Record<string, number[]>> {
  const names = Object.keys(steps);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = -warmup; round < rounds; round++) {
    const start = ((round % names.length) + names.length) % names.length;
    for (let i = 0; i < names.length; i++) {
      const name = names[(start + i) % names.length] as string;
      const ms = await (steps[name] as Step)();
      if (round >= 0) samples[name]?.push(ms);
    }
  }
  return samples;
}

/** A `tools/call` echo step that checks the echoed text. */
export function echoStep(client: RpcClient, tool: string, message = "bench"): Step {
  return async () => {
    const reply = await client.call("tools/call", { name: tool, arguments: { message } });
    const text = toolText(reply);
    if (text !== `Echo: ${message}`) {
      throw new Error(`${tool} at ${client.endpoint.url.href} answered: ${text.slice(0, 300)}`);
    }
    return reply.ms;
  };
}

/** A `tools/list` step that checks the number of tools. */
export function listStep(client: RpcClient, expectTools: number | undefined): Step {
  return async () => {
    const reply = await client.call("tools/list", {});
    const { tools } = expectResult(reply, `tools/list at ${client.endpoint.url.href}`) as {
      tools: unknown[];
    };
    if (expectTools !== undefined && tools.length !== expectTools) {
      throw new Error(
        `tools/list at ${client.endpoint.url.href} gave ${tools.length} tools, expected ${expectTools}`,
      );
    }
    return reply.ms;
  };
}

export interface PairedFigure {
  proxy: Summary;
  baseline: Summary;
  /** proxy − baseline, round by round. */
  diff: Summary;
}

/** Summaries of two interleaved samples and of their round-by-round differences. */
export function paired(proxy: readonly number[], baseline: readonly number[]): PairedFigure {
  const diffs = proxy.map((ms, i) => ms - (baseline[i] ?? Number.NaN));
  return { proxy: summarize(proxy), baseline: summarize(baseline), diff: summarize(diffs) };
}

/** The tool names a `tools/list` reply offers. */
export function toolNames(reply: RpcReply): string[] {
  const { tools } = expectResult(reply, "tools/list") as { tools: { name: string }[] };
  return tools.map((t) => t.name);
}

/** Median of per-round maxima: what a perfect parallel fan-out over `series` would cost. */
export function medianOfMaxima(series: readonly (readonly number[])[]): number {
  const rounds = Math.min(...series.map((s) => s.length));
  const maxima: number[] = [];
  for (let i = 0; i < rounds; i++) maxima.push(Math.max(...series.map((s) => s[i] as number)));
  return percentile(maxima, 50);
}
