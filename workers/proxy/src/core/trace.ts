/**
 * W3C trace context in an MCP request's `_meta` (`traceparent`, `tracestate`, `baggage`, the keys
 * the SDK names): what the gateway carries from the agent's request to the backend's, so a trace
 * spans the hop through it. Only string values of those three keys travel; nothing else in the
 * agent's `_meta` reaches a backend through `/mcp`.
 */
import {
  BAGGAGE_META_KEY,
  TRACEPARENT_META_KEY,
  TRACESTATE_META_KEY,
} from "@modelcontextprotocol/server";
import { isJsonObject } from "./json.ts";

const KEYS = [TRACEPARENT_META_KEY, TRACESTATE_META_KEY, BAGGAGE_META_KEY] as const;

/** The trace context in `meta`, or undefined when it holds none. */
export function traceContextOf(meta: unknown): Record<string, string> | undefined {
  if (!isJsonObject(meta)) return undefined;
  let trace: Record<string, string> | undefined;
  for (const key of KEYS) {
    const value = meta[key];
    if (typeof value === "string" && value.length <= 8192) {
      trace ??= {};
      trace[key] = value;
    }
  }
  return trace;
}
