/**
 * The backends the gateway routes to, each probed now (a tools/list, as the proxy's own identity),
 * and forms to add a network backend (the gateway probes it first) or remove one nobody is
 * granted. mcp1 rides a service binding and can be neither replaced nor removed here.
 */
import type { AdminApi, Backend } from "./api.ts";
import { button, h, message, reason } from "./dom.ts";

export function showBackends(root: HTMLElement, api: AdminApi): void {
  const status = h("div", { id: "backends-status" }, message("info", "Probing the backends…"));
  const body = h("div", { id: "backends" });
  const id = h("input", {
    name: "id",
    required: "",
    pattern: "[a-z][a-z0-9]{0,15}",
    placeholder: "notes",
    "aria-label": "Backend id",
  });
  const url = h("input", {
    name: "url",
    type: "url",
    required: "",
    placeholder: "https://notes.example.com/mcp",
    "aria-label": "Backend URL",
  });
  const identity = h(
    "select",
    { name: "identity", "aria-label": "Identity" },
    h("option", { value: "none" }, "no identity"),
    h("option", { value: "assertion" }, "signed assertion"),
  );
  const form = h(
    "form",
    { id: "backend-form", class: "inline-form" },
    id,
    url,
    identity,
    h("button", { type: "submit" }, "Add backend"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void add({ id: id.value.trim(), url: url.value.trim(), identity: identity.value });
  });
  root.replaceChildren(
    h("h2", {}, "Backends"),
    h(
      "p",
      { class: "toolbar" },
      button("Probe again", () => void load(), { id: "backends-refresh" }),
    ),
    status,
    body,
    h("h3", {}, "Add a backend"),
    h(
      "p",
      { class: "muted" },
      "A Streamable HTTP MCP server; it must answer a probe before it is added. Grant it to ",
      "agents in the policy afterwards.",
    ),
    form,
  );

  async function load(note?: HTMLElement) {
    try {
      const { backends } = await api.backends();
      body.replaceChildren(table(backends));
      status.replaceChildren(...(note ? [note] : []));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  async function add(entry: { id: string; url: string; identity: string }) {
    status.replaceChildren(message("info", `Probing ${entry.id}…`));
    try {
      await api.addBackend(entry);
      form.reset();
      await load(message("ok", `${entry.id} added.`));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  async function remove(backend: string) {
    try {
      await api.removeBackend(backend);
      await load(message("ok", `${backend} removed.`));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  function table(backends: Backend[]): HTMLElement {
    return h(
      "table",
      { class: "grid" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Server", "Reached at", "Identity", "Health", ""].map((label) => h("th", {}, label)),
        ),
      ),
      h(
        "tbody",
        {},
        ...backends.map((backend) => {
          const { health } = backend;
          return h(
            "tr",
            { "data-backend": backend.id, class: health.ok ? "up" : "down" },
            h("td", {}, h("code", {}, backend.id)),
            h(
              "td",
              {},
              backend.url === null
                ? h("span", { class: "muted" }, "service binding")
                : h("code", {}, backend.url),
            ),
            h("td", {}, backend.identity),
            h(
              "td",
              { class: "health" },
              health.ok
                ? h("span", { class: "badge ok" }, `up: ${health.tools} tools, ${health.ms} ms`)
                : h("span", { class: "badge down" }, `down: ${health.error}`),
            ),
            h("td", {}, backend.route === "network" ? removeButton(backend.id) : ""),
          );
        }),
      ),
    );
  }

  /** Remove, then confirm: one stray click removes nothing. */
  function removeButton(backend: string): HTMLButtonElement {
    const element = button("Remove", () => {
      if (element.dataset.armed === "yes") {
        void remove(backend);
        return;
      }
      element.dataset.armed = "yes";
      element.textContent = `Really remove ${backend}?`;
    });
    element.classList.add("danger");
    return element;
  }

  void load();
}
