import { describe, expect, it } from "vitest";
import { messagesOf } from "../../workers/proxy/src/core/envelope.ts";
import {
  cancelCall,
  cancellationsIn as cancellationsAmong,
  trackCall,
} from "../../workers/proxy/src/state/in-flight.ts";

/** Cancellations as the pipeline reads them: from the body's parsed envelope. */
const cancellationsIn = (body: unknown) => cancellationsAmong(messagesOf(body));

describe("cancelling a call from a later request", () => {
  it("aborts the agent's call with that request id", () => {
    const call = trackCall("agent_name1", 7);
    expect(cancelCall("agent_name1", 7, "changed my mind")).toBe(true);
    expect(call.signal.aborted).toBe(true);
    call.done();
  });

  it("never lets one agent cancel another's call, nor confuses 7 with '7'", () => {
    const call = trackCall("agent_name1", 7);
    expect(cancelCall("agent_name2", 7, "x")).toBe(false);
    expect(cancelCall("agent_name1", "7", "x")).toBe(false);
    expect(call.signal.aborted).toBe(false);
    call.done();
  });

  it("forgets a finished call", () => {
    trackCall("agent_name1", 8).done();
    expect(cancelCall("agent_name1", 8, "late")).toBe(false);
  });

  it("reads cancellations from single messages and batches, ignoring malformed ones", () => {
    expect(
      cancellationsIn([
        {
          jsonrpc: "2.0",
          method: "notifications/cancelled",
          params: { requestId: 3, reason: "r" },
        },
        { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: { evil: 1 } } },
        { jsonrpc: "2.0", method: "notifications/cancelled" },
        { jsonrpc: "2.0", id: 1, method: "tools/call" },
        null,
      ]),
    ).toEqual([{ id: 3, reason: "r" }]);
    expect(
      cancellationsIn({ method: "notifications/cancelled", params: { requestId: "a" } }),
    ).toEqual([{ id: "a", reason: "no reason given" }]);
  });
});
