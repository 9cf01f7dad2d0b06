/**
 * Revoked tokens: one token by its `jti`, or every token of an agent issued before a time. A
 * revoked token gets 401 on its next request, at every isolate within two seconds.
 */
import type { AdminApi, Revocations } from "./api.ts";
import { h, message, reason, secondsOf, unixTime } from "./dom.ts";

export function showRevocations(root: HTMLElement, api: AdminApi): void {
  const status = h("div", { id: "revocations-status" }, message("info", "Loading…"));
  const body = h("div", { id: "revocations" });

  const jti = h("input", { name: "jti", required: "", "aria-label": "Token id (jti)" });
  const expires = h("input", {
    name: "expires_at",
    type: "datetime-local",
    "aria-label": "The token expires at (optional)",
  });
  const byToken = h(
    "form",
    { id: "revoke-token", class: "inline-form" },
    h("label", {}, "jti ", jti),
    h("label", {}, "kept until the token expires at ", expires),
    h("button", { type: "submit", class: "danger" }, "Revoke the token"),
  );
  byToken.addEventListener("submit", (event) => {
    event.preventDefault();
    const expiresAt = secondsOf(expires);
    void revoke(
      { jti: jti.value.trim(), ...(expiresAt === undefined ? {} : { expires_at: expiresAt }) },
      byToken,
    );
  });

  const agent = h("input", { name: "agent", required: "", "aria-label": "Agent" });
  const before = h("input", {
    name: "before",
    type: "datetime-local",
    "aria-label": "Tokens issued before (optional, default now)",
  });
  const byAgent = h(
    "form",
    { id: "revoke-agent", class: "inline-form" },
    h("label", {}, "agent ", agent),
    h("label", {}, "tokens issued before ", before),
    h("button", { type: "submit", class: "danger" }, "Revoke its tokens"),
  );
  byAgent.addEventListener("submit", (event) => {
    event.preventDefault();
    const until = secondsOf(before);
    void revoke(
      { agent: agent.value.trim(), ...(until === undefined ? {} : { before: until }) },
      byAgent,
    );
  });

  root.replaceChildren(
    h("h2", {}, "Revocations"),
    status,
    body,
    h("h3", {}, "Revoke one token"),
    h(
      "p",
      { class: "muted" },
      "Its record is kept until the token would have expired anyway (30 days when not given).",
    ),
    byToken,
    h("h3", {}, "Revoke every token of an agent"),
    h(
      "p",
      { class: "muted" },
      "Tokens issued later (after now, when no time is given) still work.",
    ),
    byAgent,
  );

  async function load(note?: HTMLElement) {
    try {
      body.replaceChildren(...tables(await api.revocations()));
      status.replaceChildren(...(note ? [note] : []));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  async function revoke(
    revocation: { jti: string; expires_at?: number } | { agent: string; before?: number },
    form: HTMLFormElement,
  ) {
    try {
      await api.revoke(revocation);
      form.reset();
      const what = "jti" in revocation ? `token ${revocation.jti}` : `${revocation.agent}'s tokens`;
      await load(message("ok", `Revoked ${what}.`));
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  void load();
}

function tables({ tokens, agents }: Revocations): HTMLElement[] {
  const rows = (entries: [string, number][], attribute: string) =>
    entries
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, seconds]) =>
        h(
          "tr",
          { [attribute]: key },
          h("td", {}, h("code", {}, key)),
          h("td", {}, unixTime(seconds)),
        ),
      );
  const table = (headers: string[], body: HTMLElement[], empty: string) =>
    body.length === 0
      ? h("p", { class: "muted" }, empty)
      : h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, ...headers.map((label) => h("th", {}, label)))),
          h("tbody", {}, ...body),
        );
  return [
    h("h3", {}, "Tokens"),
    table(
      ["jti", "kept until"],
      rows(Object.entries(tokens), "data-jti"),
      "No single token is revoked.",
    ),
    h("h3", {}, "Agents"),
    table(
      ["agent", "refused if issued before"],
      rows(Object.entries(agents), "data-revoked-agent"),
      "No agent's tokens are revoked.",
    ),
  ];
}
