/**
 * How the proxy gives concurrency slots back to an agent's gate (`guards.ts`): with the agent's
 * next admission when one comes soon, on their own after RELEASE_AFTER_MS otherwise, and never
 * lost when the ride fails. The gate here is a recording stand-in for the Durable Object stub.
 */
import { describe, expect, it } from "vitest";
import { admit, RELEASE_AFTER_MS } from "../../../workers/proxy/src/state/admission.ts";
import type { Admission, Admitted } from "../../../workers/proxy/src/state/agent-gate.ts";

type Call = { method: "admit" | "release"; agent: string; leases: string[] };

function recordingGates() {
  const calls: Call[] = [];
  const options = { failAdmit: false };
  let next = 0;
  const gates = {
    idFromName: (name: string) => name,
    get: (agent: string) => ({
      admit: async (request: Admission, released: string[] = []): Promise<Admitted> => {
        calls.push({ method: "admit", agent, leases: released });
        if (options.failAdmit) throw new Error("gate unreachable");
        return { ok: true, leases: request.calls.map(() => `lease-${next++}`) };
      },
      release: async (leases: string[]) => {
        calls.push({ method: "release", agent, leases });
      },
    }),
  };
  return { gates: gates as unknown as Parameters<typeof admit>[0], calls, options };
}

const oneCall: Admission = {
  rate: { limit: 100, windowMs: 60_000 },
  toolRate: { limit: 100, windowMs: 60_000 },
  calls: [{}],
  maxInFlight: 8,
  leaseMs: 15_000,
};

const settle = () => new Promise((resolve) => setTimeout(resolve, RELEASE_AFTER_MS + 30));

describe("giving slots back to the gate", () => {
  it("sends returned slots along with the agent's next admission, not on their own", async () => {
    const { gates, calls } = recordingGates();
    const first = await admit(gates, "a", oneCall);
    if (!first.ok) throw new Error("refused");
    const delivered = first.release();
    await admit(gates, "a", oneCall);
    await delivered;
    await settle();
    expect(calls).toEqual([
      { method: "admit", agent: "a", leases: [] },
      { method: "admit", agent: "a", leases: ["lease-0"] },
    ]);
  });

  it("sends them on their own after RELEASE_AFTER_MS when no admission comes, in one batch", async () => {
    const { gates, calls } = recordingGates();
    const held = [await admit(gates, "a", oneCall), await admit(gates, "a", oneCall)];
    const other = await admit(gates, "b", oneCall);
    await Promise.all([...held, other].map((slot) => (slot.ok ? slot.release() : undefined)));
    expect(calls.filter((c) => c.method === "release")).toEqual([
      { method: "release", agent: "a", leases: ["lease-0", "lease-1"] },
      { method: "release", agent: "b", leases: ["lease-2"] },
    ]);
  });

  it("keeps slots whose ride failed, and sends them later", async () => {
    const { gates, calls, options } = recordingGates();
    const first = await admit(gates, "a", oneCall);
    if (!first.ok) throw new Error("refused");
    void first.release();
    options.failAdmit = true;
    await expect(admit(gates, "a", oneCall)).rejects.toThrow("gate unreachable");
    options.failAdmit = false;
    await settle();
    expect(calls).toEqual([
      { method: "admit", agent: "a", leases: [] },
      { method: "admit", agent: "a", leases: ["lease-0"] },
      { method: "release", agent: "a", leases: ["lease-0"] },
    ]);
  });
});
