/**
 * What a policy change would do, shown before it is made: each agent's gained and lost names
 * (the gateway's dry run, which lists them as the agents' own lists would), and the textual diff
 * of the two policies.
 */
import type { Effects, PolicyDoc } from "./api.ts";
import { canonicalJson, lineDiff } from "./diff.ts";
import { h, names } from "./dom.ts";

/** The dry run's answer, one block per agent whose grants change. */
export function effectsView(changes: Effects): HTMLElement {
  const agents = Object.keys(changes).sort();
  if (agents.length === 0) {
    return h("p", { class: "muted effects" }, "No agent's grants change.");
  }
  return h(
    "div",
    { class: "effects" },
    ...agents.map((agent) => {
      const { gained = [], lost = [] } = changes[agent] ?? {};
      return h(
        "section",
        { class: "effect", "data-agent": agent },
        h("h4", {}, h("code", {}, agent)),
        gained.length === 0 && lost.length === 0
          ? h("p", { class: "muted" }, "Its grants change, but not the names it sees.")
          : "",
        gained.length > 0
          ? h("div", { class: "gained" }, h("span", { class: "label" }, "gains"), names(gained))
          : "",
        lost.length > 0
          ? h("div", { class: "lost" }, h("span", { class: "label" }, "loses"), names(lost))
          : "",
      );
    }),
  );
}

/** The line diff of two policies, each written with sorted keys. */
export function diffView(before: PolicyDoc, after: PolicyDoc): HTMLElement {
  const lines = lineDiff(canonicalJson(before), canonicalJson(after));
  if (!lines.some((line) => line.op === "add" || line.op === "del")) {
    return h("p", { class: "muted diff" }, "The two policies are the same.");
  }
  return h(
    "pre",
    { class: "diff", "aria-label": "Policy diff" },
    ...lines.map((line) => {
      switch (line.op) {
        case "skip":
          return h("span", { class: "skip" }, `  … ${line.count} unchanged lines`);
        case "add":
          return h("ins", {}, `+ ${line.text}`);
        case "del":
          return h("del", {}, `- ${line.text}`);
        default:
          return h("span", {}, `  ${line.text}`);
      }
    }),
  );
}
