/**
 * Every agent the policy or the operator knows, with what it sees now (the same lists its own
 * tools/list, resources/list and prompts/list answer), when it was last seen, and a switch to
 * disable it (its every token is then refused) or enable it again.
 */
import type { AdminApi, Agent } from "./api.ts";
import { button, h, message, names, reason, time } from "./dom.ts";

export function showAgents(root: HTMLElement, api: AdminApi): void {
  const status = h("div", { id: "agents-status" }, message("info", "Loading…"));
  const body = h("div", { id: "agents" });
  root.replaceChildren(
    h("h2", {}, "Agents"),
    h(
      "p",
      { class: "muted" },
      "What each agent is shown now, under the names it sees. A disabled agent's every request is ",
      "refused (401) until it is enabled again.",
    ),
    h(
      "p",
      { class: "toolbar" },
      button("Refresh", () => void load(), { id: "agents-refresh" }),
    ),
    status,
    body,
  );

  async function load(note?: HTMLElement) {
    try {
      const { agents } = await api.agents();
      body.replaceChildren(
        agents.length === 0
          ? h("p", { class: "muted" }, "No agents: the policy grants nothing.")
          : table(agents),
      );
      status.replaceChildren(...(note ? [note] : []));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  async function setEnabled(agent: string, enabled: boolean, note: string) {
    try {
      await api.setEnabled(agent, enabled, note);
      await load(message("ok", `${agent} is ${enabled ? "enabled" : "disabled"}.`));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  function table(agents: Agent[]): HTMLElement {
    return h(
      "table",
      { class: "grid" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Agent", "State", "Servers", "Tools", "Resources, prompts", "Last seen", ""].map(
            (label) => h("th", {}, label),
          ),
        ),
      ),
      h("tbody", {}, ...agents.map(row)),
    );
  }

  function row(agent: Agent): HTMLElement {
    const note = h("input", {
      type: "text",
      class: "note",
      maxlength: "500",
      placeholder: "why (optional)",
      "aria-label": `Note for disabling ${agent.id}`,
    });
    const action = agent.enabled
      ? h(
          "span",
          { class: "inline" },
          note,
          button("Disable", () => void setEnabled(agent.id, false, note.value), {
            class: "danger disable",
          }),
        )
      : button("Enable", () => void setEnabled(agent.id, true, ""), { class: "enable" });
    const { tools, resources, prompts } = agent.effective;
    return h(
      "tr",
      { "data-agent": agent.id, class: agent.enabled ? undefined : "disabled" },
      h("td", {}, h("code", { class: "agent-id" }, agent.id)),
      h(
        "td",
        { class: "state" },
        h("span", { class: "badge" }, agent.enabled ? "enabled" : "disabled"),
        agent.note ? h("div", { class: "agent-note" }, agent.note) : "",
      ),
      h("td", { class: "servers" }, names(agent.servers)),
      h("td", { class: "tools" }, names(tools)),
      h(
        "td",
        { class: "others" },
        resources.length + prompts.length === 0
          ? h("span", { class: "muted" }, "none")
          : h(
              "details",
              {},
              h("summary", {}, `${resources.length} resources, ${prompts.length} prompts`),
              names(resources),
              names(prompts),
            ),
      ),
      h(
        "td",
        { class: "seen" },
        agent.last_seen ? time(agent.last_seen) : h("span", { class: "muted" }, "never"),
      ),
      h("td", { class: "actions" }, action),
    );
  }

  void load();
}
