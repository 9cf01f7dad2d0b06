/**
 * What a 2025 agent's session on /mcp holds and what counts as an answer to a relayed question
 * (workers/proxy/src/core/agent-session.ts): pure rules, no runtime.
 */
import { describe, expect, it } from "vitest";
import {
  answerableKey,
  answerableOf,
  answersIn,
  inputCapabilitiesOf,
  QUESTION_PREFIX,
  routeOf,
  routeText,
  sessionOf,
  sessionText,
} from "../../workers/proxy/src/core/agent-session.ts";

describe("what an initialize declares the agent can answer", () => {
  it("keeps sampling, elicitation (form by default) and roots, nothing else", () => {
    expect(answerableOf({ capabilities: { experimental: { x: {} } } })).toBeUndefined();
    expect(answerableOf({ capabilities: {} })).toBeUndefined();
    expect(answerableOf({})).toBeUndefined();
    expect(answerableOf({ capabilities: { elicitation: {} } })).toEqual({
      elicitation: { form: {} },
    });
    expect(answerableOf({ capabilities: { elicitation: { url: {} } } })).toEqual({
      elicitation: { url: {} },
    });
    expect(
      answerableOf({
        capabilities: { sampling: { tools: {} }, roots: { listChanged: true }, extra: 1 },
      }),
    ).toEqual({ sampling: {}, roots: { listChanged: true } });
  });

  it("ignores capabilities of the wrong shape instead of failing", () => {
    expect(answerableOf({ capabilities: { sampling: "yes", roots: [] } })).toBeUndefined();
    expect(answerableOf({ capabilities: "all" })).toBeUndefined();
  });

  it("round-trips through the session text, and equal sets are equal text and key", () => {
    const a = answerableOf({ capabilities: { roots: {}, elicitation: { url: {}, form: {} } } });
    const b = answerableOf({ capabilities: { elicitation: { form: {}, url: {} }, roots: {} } });
    if (!a || !b) throw new Error("expected capabilities");
    expect(sessionText(a)).toBe(sessionText(b));
    expect(sessionOf(sessionText(a))).toEqual(a);
    expect(answerableKey(a)).toBe("fur");
    expect(answerableKey(undefined)).toBe("");
    expect(sessionOf("not json")).toBeUndefined();
    expect(sessionOf(JSON.stringify({ v: 2, answerable: {} }))).toBeUndefined();
  });
});

describe("the answers in a body", () => {
  const answer = (id: unknown) => ({ jsonrpc: "2.0", id, result: { action: "accept" } });
  const ours = `${QUESTION_PREFIX}abc`;

  it("are the body's responses to the gateway's question ids, one or a batch", () => {
    expect(answersIn(answer(ours))).toEqual([
      { id: ours, answer: { result: { action: "accept" } } },
    ]);
    expect(
      answersIn([answer(ours), { jsonrpc: "2.0", id: ours, error: { code: -1, message: "no" } }]),
    ).toHaveLength(2);
  });

  it("are none when anything else is in the body: it goes to the SDK whole", () => {
    expect(answersIn(answer(7))).toBeUndefined();
    expect(answersIn([answer(ours), { jsonrpc: "2.0", id: 1, method: "ping" }])).toBeUndefined();
    expect(answersIn({ jsonrpc: "2.0", id: ours, result: {}, error: {} })).toBeUndefined();
    expect(answersIn({ jsonrpc: "2.0", id: ours })).toBeUndefined();
    expect(answersIn([])).toBeUndefined();
    expect(answersIn({ id: ours, result: {} })).toBeUndefined();
  });

  it("route to where the question came from, and nowhere for a malformed route", () => {
    const route = { server: "exch", session: "s-1", protocolVersion: "2025-11-25", id: 4 };
    expect(routeOf(routeText(route))).toEqual(route);
    expect(routeOf(JSON.stringify({ server: "exch" }))).toBeUndefined();
    expect(routeOf("{")).toBeUndefined();
  });
});

describe("what a 2026-07-28 request declares it can answer", () => {
  const meta = (m: Record<string, unknown>) => ({ params: { _meta: m } });
  it("is read from the envelope of a 2026-07-28 request only", () => {
    expect(
      inputCapabilitiesOf(
        meta({
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientCapabilities": { elicitation: { form: {} } },
        }),
      ),
    ).toEqual({ elicitation: { form: {} } });
    expect(
      inputCapabilitiesOf(
        meta({
          "io.modelcontextprotocol/protocolVersion": "2025-11-25",
          "io.modelcontextprotocol/clientCapabilities": { elicitation: {} },
        }),
      ),
    ).toBeUndefined();
    expect(inputCapabilitiesOf([meta({})])).toBeUndefined();
  });
});
