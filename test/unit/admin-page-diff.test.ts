/** The admin page's policy diff (workers/proxy/page/diff.ts): plain strings in, lines out. */
import { describe, expect, it } from "vitest";
import { canonicalJson, lineDiff } from "../../workers/proxy/page/diff.ts";

const lines = (...texts: string[]) => texts.join("\n");

describe("canonicalJson", () => {
  it("sorts every object's keys, keeps arrays in order, indents by two", () => {
    expect(canonicalJson({ b: { z: "*", a: ["y", "x"] }, a: {} })).toBe(
      lines(
        "{",
        '  "a": {},',
        '  "b": {',
        '    "a": [',
        '      "y",',
        '      "x"',
        "    ],",
        '    "z": "*"',
        "  }",
        "}",
      ),
    );
  });

  it("writes two policies that differ only in order the same way", () => {
    const one = { red: { mcp1: "*", mcp3: ["echo"] }, blue: { mcp2: "*" } };
    const two = { blue: { mcp2: "*" }, red: { mcp3: ["echo"], mcp1: "*" } };
    expect(canonicalJson(one)).toBe(canonicalJson(two));
  });
});

describe("lineDiff", () => {
  it("marks added and removed lines, and keeps the rest in order", () => {
    expect(lineDiff(lines("a", "b", "c"), lines("a", "x", "c", "d"), 3)).toEqual([
      { op: "same", text: "a" },
      { op: "del", text: "b" },
      { op: "add", text: "x" },
      { op: "same", text: "c" },
      { op: "add", text: "d" },
    ]);
  });

  it("finds nothing between equal texts", () => {
    const diff = lineDiff(lines("a", "b"), lines("a", "b"));
    expect(diff.every((line) => line.op === "same")).toBe(true);
  });

  it("folds long unchanged runs, keeping the context next to each change", () => {
    const before = Array.from({ length: 20 }, (_, i) => `line ${i}`);
    const after = [...before];
    after[10] = "changed";
    const diff = lineDiff(before.join("\n"), after.join("\n"), 2);
    expect(diff).toEqual([
      { op: "skip", count: 8 },
      { op: "same", text: "line 8" },
      { op: "same", text: "line 9" },
      { op: "del", text: "line 10" },
      { op: "add", text: "changed" },
      { op: "same", text: "line 11" },
      { op: "same", text: "line 12" },
      { op: "skip", count: 7 },
    ]);
  });

  it("shows a new agent's grant as added lines only", () => {
    const before = { agent_name1: { mcp1: "*" } };
    const after = { ...before, page_agent: { mcp1: ["echo"] } };
    const diff = lineDiff(canonicalJson(before), canonicalJson(after));
    expect(diff.filter((line) => line.op === "del")).toEqual([]);
    expect(
      diff.filter((line) => line.op === "add").map((line) => "text" in line && line.text),
    ).toEqual(["  },", '  "page_agent": {', '    "mcp1": [', '      "echo"', "    ]"]);
  });
});
