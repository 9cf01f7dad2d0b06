/** The input limits of the battle tools, checked as plain functions (no Durable Object, no HTTP). */
import { describe, expect, it } from "vitest";
import {
  LIMITS,
  validateEndInput,
  validateProgressInput,
} from "../../../durable-objects/battle-input.ts";

const base = { battle_id: "b-1", message: "Green advances", reported_by: "scout", agent: null };

function rejection(raw: unknown): string {
  const result = validateProgressInput(raw);
  if (result.ok) throw new Error("expected the input to be refused");
  return result.message;
}

describe("battle input limits", () => {
  it("accepts a minimal progress report and one with every optional field", () => {
    expect(validateProgressInput(base).ok).toBe(true);
    const full = { ...base, detail: { x: 1, units: ["a"] }, markdown_content: "# Turn 1" };
    expect(validateProgressInput(full)).toEqual({ ok: true, value: full });
  });

  it("accepts battle ids made of letters, digits and _ . : - up to 128 characters", () => {
    for (const battle_id of ["A", "game:42.round_1-b", "x".repeat(128)]) {
      expect(validateProgressInput({ ...base, battle_id }).ok).toBe(true);
    }
  });

  it("refuses empty, over-long and oddly-charactered battle ids, naming the field", () => {
    for (const battle_id of ["", "x".repeat(129), "has space", "slash/no", "ümlaut"]) {
      expect(rejection({ ...base, battle_id })).toBe(
        "battle_id: must be 1 to 128 characters from A-Z a-z 0-9 _ . : -",
      );
    }
  });

  it("refuses a message over 4000 characters and accepts exactly 4000", () => {
    expect(validateProgressInput({ ...base, message: "m".repeat(LIMITS.messageChars) }).ok).toBe(
      true,
    );
    expect(rejection({ ...base, message: "m".repeat(LIMITS.messageChars + 1) })).toBe(
      "message: must be at most 4000 characters",
    );
  });

  it("refuses empty message and reported_by", () => {
    expect(rejection({ ...base, message: "" })).toBe("message: must not be empty");
    expect(rejection({ ...base, reported_by: "" })).toBe("reported_by: must not be empty");
  });

  it("refuses reported_by over 200 characters", () => {
    expect(rejection({ ...base, reported_by: "r".repeat(201) })).toBe(
      "reported_by: must be at most 200 characters",
    );
    expect(validateProgressInput({ ...base, reported_by: "r".repeat(200) }).ok).toBe(true);
  });

  it("measures markdown_content in UTF-8 bytes: 64 KiB passes, one byte more does not", () => {
    expect(validateProgressInput({ ...base, markdown_content: "a".repeat(65536) }).ok).toBe(true);
    expect(rejection({ ...base, markdown_content: "a".repeat(65537) })).toBe(
      "markdown_content: must be at most 65536 bytes (UTF-8)",
    );
    // 3 bytes per character: fewer than 64 Ki characters, yet over the byte limit.
    expect(rejection({ ...base, markdown_content: "€".repeat(21846) })).toMatch(/65536 bytes/);
  });

  it("refuses detail whose JSON exceeds 16 KiB, and detail that is not an object", () => {
    // {"k":"…"} adds 8 bytes around the value.
    const fits = { k: "d".repeat(LIMITS.detailJsonBytes - 8) };
    expect(validateProgressInput({ ...base, detail: fits }).ok).toBe(true);
    expect(rejection({ ...base, detail: { k: "d".repeat(LIMITS.detailJsonBytes - 7) } })).toBe(
      "detail: must be at most 16384 bytes as JSON",
    );
    expect(rejection({ ...base, detail: ["not", "an", "object"] })).toMatch(/^detail: /);
  });

  it("refuses an unknown winner and a missing one on the end report", () => {
    expect(validateEndInput({ ...base, winner: "blue" }).ok).toBe(true);
    const purple = validateEndInput({ ...base, winner: "purple" });
    expect(purple.ok ? "" : purple.message).toMatch(/^winner: /);
    const missing = validateEndInput(base);
    expect(missing.ok ? "" : missing.message).toMatch(/^winner: /);
  });

  it("lists every offending field at once", () => {
    expect(rejection({ ...base, battle_id: "", message: "" }).split(", ")).toEqual([
      "battle_id: must be 1 to 128 characters from A-Z a-z 0-9 _ . : -",
      "message: must not be empty",
    ]);
  });
});
