/**
 * How the proxy gives concurrency slots back to an agent's gate (`state/admission.ts`): with the
 * agent's next admission when one comes soon, on their own after RELEASE_AFTER_MS otherwise, and
 * never lost when the ride fails; and how it keeps a stream's lease alive while the stream lives.
 * The gate here is a recording stand-in for the Durable Object stub.
 */
import { describe, expect, it } from "vitest";
import { admit, RELEASE_AFTER_MS } from "../../../workers/proxy/src/state/admission.ts";
import type { Admission, Admitted } from "../../../workers/proxy/src/state/agent-gate.ts";

type Call = { method: "admit" | "release" | "renew"; agent: string; leases: string[] };

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
        return {
          ok: true,
          leases: request.calls.map(() => `lease-${next++}`),
          streamLeases: Array.from({ length: request.streams ?? 0 }, () => `stream-${next++}`),
        };
      },
      release: async (leases: string[]) => {
        calls.push({ method: "release", agent, leases });
      },
      renew: async (leases: string[]) => {
        calls.push({ method: "renew", agent, leases });
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

describe("keeping a stream's lease", () => {
  const oneStream: Admission = {
    ...oneCall,
    calls: [],
    streams: 1,
    maxStreams: 8,
    streamLeaseMs: 150,
  };

  it("renews it every third of its lease while the stream lives, and stops once it is released", async () => {
    const { gates, calls } = recordingGates();
    const held = await admit(gates, "a", oneStream);
    if (!held.ok) throw new Error("refused");
    await new Promise((resolve) => setTimeout(resolve, 400));
    const renewals = calls.filter((c) => c.method === "renew");
    // Every 50 ms for 400 ms: never a gap the lease would not survive.
    expect(renewals.length).toBeGreaterThanOrEqual(5);
    for (const renewal of renewals) expect(renewal.leases).toEqual(["stream-0"]);
    await held.release();
    const renewed = calls.filter((c) => c.method === "renew").length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(calls.filter((c) => c.method === "renew")).toHaveLength(renewed);
    expect(calls.at(-1)).toEqual({ method: "release", agent: "a", leases: ["stream-0"] });
  });
});
