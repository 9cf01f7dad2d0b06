/** The policy the proxy's workerd tests run under: the seed's, plus a narrow and an empty agent. */
export const TEST_POLICY = {
  agent_name1: { mcp1: "*", mcp3: "*" },
  agent_name2: { mcp2: "*", mcp3: "*" },
  narrow: { mcp1: ["echo"] },
  nobody: {},
  integrator: { ext: "*" },
  watcher: { dyn: "*" },
  ext_narrow: { ext: ["echo"] },
  sleeper: { ext: "*", mcp2: "*", slow: "*" },
  // zero-trust.test.ts: batches, on an agent of their own (a test's slots can outlive it).
  batcher: { mcp1: "*", mcp3: "*" },
  // door-exchanges.test.ts: an agent on the exchange backends, and another beside it.
  asker: { ref: "*", exch: "*", mrtr: "*" },
  bystander: { exch: "*", mrtr: "*" },
  // streams.test.ts: agents on the stream-counting backends, one per case (each has its own cap).
  streams_listener: { lsa: "*", lsb: "*" },
  streams_upstream: { lsa: "*", lsb: "*" },
  streams_door: { lsa: "*", lsb: "*" },
  streams_elsewhere: { lsa: "*", lsb: "*" },
  streams_batch: { lsa: "*", lsb: "*", slow: "*" },
};
