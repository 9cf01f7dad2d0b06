/**
 * The admin page's script (served as /admin/assets/main.js). Without a token it asks for one;
 * with one it shows the gateway's run-time state in tabs, each loaded from the admin API when
 * it is opened. The page's HTML holds no data: everything here comes from the API, as text.
 */
import { showAgents } from "./agents-view.ts";
import { AdminApi, type ApiError } from "./api.ts";
import { showAudit } from "./audit-view.ts";
import { showBackends } from "./backends-view.ts";
import { button, h } from "./dom.ts";
import { showHistory } from "./history-view.ts";
import { showPolicy } from "./policy-view.ts";
import { showRevocations } from "./revocations-view.ts";
import { currentToken, forgetToken, rememberToken, tokenClaims } from "./token.ts";

const TOKEN_COMMAND = "npm run -s token -- --agent ops --scope admin";

const TABS = {
  agents: ["Agents", showAgents],
  backends: ["Backends", showBackends],
  policy: ["Policy", showPolicy],
  history: ["History", showHistory],
  revocations: ["Revocations", showRevocations],
  audit: ["Audit log", showAudit],
} as const;
type Tab = keyof typeof TABS;

function start(problem?: string): void {
  const root = document.getElementById("app");
  if (!root) return;
  const token = currentToken();
  if (!token) {
    askForToken(root, problem);
    return;
  }
  const api = new AdminApi(token, (error: ApiError) => {
    forgetToken();
    start(refusal(error));
  });
  showSession(token);
  showTabs(root, api);
}

/** Why the gateway refused the token, in words an operator can act on. */
function refusal(error: ApiError): string {
  return error.status === 403
    ? `This token does not hold the admin scope (${error.message}).`
    : `The gateway refused the token: ${error.message}.`;
}

function showTabs(root: HTMLElement, api: AdminApi): void {
  const panel = h("section", { id: "panel" });
  const buttons = Object.entries(TABS).map(([tab, [label]]) =>
    button(label, () => open(tab as Tab), { "data-tab": tab, role: "tab" }),
  );
  const open = (tab: Tab) => {
    for (const b of buttons) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    history.replaceState(null, "", `#${tab}`);
    TABS[tab][1](panel, api);
  };
  root.replaceChildren(h("nav", { class: "tabs", role: "tablist" }, ...buttons), panel);
  const wanted = location.hash.slice(1);
  open(wanted in TABS ? (wanted as Tab) : "agents");
}

/** Who the page acts as, and a way to drop the token. */
function showSession(token: string): void {
  const session = document.getElementById("session");
  if (!session) return;
  const { sub, client_id, exp } = tokenClaims(token);
  const until =
    typeof exp === "number" ? ` until ${new Date(exp * 1000).toLocaleTimeString()}` : "";
  const forget = button("sign out", () => {
    forgetToken();
    session.replaceChildren();
    start();
  });
  forget.classList.add("link");
  forget.id = "sign-out";
  session.replaceChildren(
    "signed in as ",
    h("strong", { id: "actor" }, client_id ?? sub ?? "?"),
    `${until} · `,
    forget,
  );
}

/** The page shows nothing without a token: ask for one, and say how to make it. */
function askForToken(root: HTMLElement, problem?: string): void {
  document.getElementById("session")?.replaceChildren();
  const input = h("input", {
    id: "token-input",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "eyJhbGciOiJSUzI1NiIs…",
    "aria-label": "Admin token",
  });
  const form = h(
    "form",
    { class: "token-form", id: "token-form" },
    input,
    " ",
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    rememberToken(input.value);
    start();
  });
  root.replaceChildren(
    h("h1", {}, "Gateway administration"),
    problem ? h("p", { class: "message error", role: "alert", id: "token-problem" }, problem) : "",
    h(
      "p",
      {},
      "Paste a token holding the ",
      h("code", {}, "admin"),
      " scope. It stays in this tab only, and is sent only in the Authorization header. Make one with:",
    ),
    h("pre", {}, TOKEN_COMMAND),
    form,
  );
  input.focus();
}

start();
