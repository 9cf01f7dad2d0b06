/**
 * What each backend told the gateway about its protocol era, per isolate: its `server/discover`
 * result (2026-07-28), or "legacy" (2025-era servers that only answer `initialize`). A stale
 * entry costs one failed call, after which it is dropped and the backend is probed again.
 */
import type { DiscoverResult } from "@modelcontextprotocol/client";

export type EraVerdict = { kind: "modern"; discover: DiscoverResult } | { kind: "legacy" };

const verdicts = new Map<string, EraVerdict>();

export const eraVerdicts = {
  get: (backend: string): EraVerdict | undefined => verdicts.get(backend),
  set: (backend: string, verdict: EraVerdict): void => {
    verdicts.set(backend, verdict);
  },
  forget: (backend: string): void => {
    verdicts.delete(backend);
  },
  /** Forgets every verdict (tests, and a backend known to have changed). */
  clear: (): void => verdicts.clear(),
};
