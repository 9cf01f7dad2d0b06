/**
 * The audit log, newest first, filtered as `GET /admin/audit` filters it: by agent, tool, server,
 * request id and time. Admin changes are there too (method `admin`, the action in `tool`).
 */
import type { AdminApi, AuditRecord } from "./api.ts";
import { h, message, reason, time } from "./dom.ts";

const FIELDS = ["agent", "tool", "server", "request_id"] as const;

export function showAudit(root: HTMLElement, api: AdminApi): void {
  const inputs = Object.fromEntries(
    FIELDS.map((name) => [
      name,
      h("input", { name, id: `audit-${name}`, "aria-label": name.replace("_", " ") }),
    ]),
  ) as Record<(typeof FIELDS)[number], HTMLInputElement>;
  const since = h("input", { name: "since", type: "datetime-local", "aria-label": "since" });
  const until = h("input", { name: "until", type: "datetime-local", "aria-label": "until" });
  const limit = h("input", {
    name: "limit",
    type: "number",
    min: "1",
    max: "1000",
    value: "100",
    "aria-label": "at most",
  });
  const form = h(
    "form",
    { id: "audit-form", class: "inline-form" },
    ...FIELDS.map((name) => h("label", {}, `${name.replace("_", " ")} `, inputs[name])),
    h("label", {}, "since ", since),
    h("label", {}, "until ", until),
    h("label", {}, "at most ", limit),
    h("button", { type: "submit" }, "Show"),
  );
  const status = h("div", { id: "audit-status" });
  const body = h("div", { id: "audit" });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  root.replaceChildren(h("h2", {}, "Audit log"), form, status, body);

  async function load() {
    const query = new URLSearchParams();
    for (const name of FIELDS) {
      const value = inputs[name].value.trim();
      if (value) query.set(name, value);
    }
    for (const [name, input] of [
      ["since", since],
      ["until", until],
    ] as const) {
      const ms = input.value ? new Date(input.value).getTime() : Number.NaN;
      if (!Number.isNaN(ms)) query.set(name, new Date(ms).toISOString());
    }
    if (limit.value) query.set("limit", limit.value);
    status.replaceChildren(message("info", "Loading…"));
    try {
      const { records } = await api.audit(query);
      body.replaceChildren(
        records.length === 0 ? h("p", { class: "muted" }, "No records match.") : table(records),
      );
      status.replaceChildren(message("info", `${records.length} records, newest first.`));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  void load();
}

const COLUMNS = [
  "Time",
  "Agent",
  "Method",
  "Server",
  "Tool",
  "Decision",
  "Outcome",
  "Status",
  "ms",
  "Request",
];

function table(records: AuditRecord[]): HTMLElement {
  const cell = (value: string | number | null) =>
    h("td", {}, value === null ? h("span", { class: "muted" }, "—") : String(value));
  return h(
    "table",
    { class: "grid audit" },
    h("thead", {}, h("tr", {}, ...COLUMNS.map((label) => h("th", {}, label)))),
    h(
      "tbody",
      {},
      ...records.map((record) =>
        h(
          "tr",
          { "data-request": record.request_id, class: record.decision === "allow" ? "" : "denied" },
          h("td", {}, time(record.at)),
          cell(record.agent),
          cell(record.method),
          cell(record.server),
          cell(record.tool),
          cell(record.decision),
          cell(record.outcome),
          cell(record.status),
          cell(record.duration_ms),
          h(
            "td",
            {},
            h("code", { class: "request-id" }, record.request_id),
            record.message_index === null ? "" : ` [${record.message_index}]`,
          ),
        ),
      ),
    ),
  );
}
