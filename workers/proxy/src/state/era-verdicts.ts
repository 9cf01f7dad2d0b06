/**
 * What each backend told the gateway about its protocol era, per isolate: its `server/discover`
 * result (2026-07-28), or "legacy" (2025-era servers that only answer `initialize`). A stale
 * entry costs one failed call, after which it is dropped and the backend is probed again.
 */
import type { DiscoverResult, ServerCapabilities } from "@modelcontextprotocol/client";

/** A 2025 backend's verdict holds the capabilities its `initialize` declared, when it was heard. */
export type EraVerdict =
  | { kind: "modern"; discover: DiscoverResult }
  | { kind: "legacy"; capabilities?: ServerCapabilities };

/** What a backend declared it can do, as far as this isolate has heard. */
export function capabilitiesOf(verdict: EraVerdict | undefined): ServerCapabilities | undefined {
  if (!verdict) return undefined;
  return verdict.kind === "modern" ? verdict.discover.capabilities : verdict.capabilities;
}

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
