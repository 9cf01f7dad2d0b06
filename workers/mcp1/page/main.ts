/**
 * The battle page's script (served as /battles/assets/main.js): picks the view from the path,
 * /battles for the list and /battles/<id> for one battle, once it has an inspection token.
 */
import type { ApiError } from "./api.ts";
import { showBattle } from "./battle-view.ts";
import { button, h } from "./dom.ts";
import { showList } from "./list-view.ts";
import {
  adoptFragmentToken,
  currentToken,
  forgetToken,
  rememberToken,
  tokenClaims,
} from "./token.ts";

const TOKEN_COMMAND = "npm run -s token -- --agent inspector --scope inspect_battles";

function start(): void {
  adoptFragmentToken();
  const root = document.getElementById("app");
  if (!root) return;
  const token = currentToken();
  if (!token) {
    askForToken(root);
    return;
  }
  showSession(token);

  const onAuthError = (error: ApiError) => {
    forgetToken();
    askForToken(root, error.message);
  };
  const path = location.pathname.replace(/\/+$/, "");
  if (path === "/battles") {
    showList(root, token, onAuthError);
  } else {
    void showBattle(root, battleIdOf(path), token, onAuthError);
  }
}

/** The battle id in `/battles/<id>`, percent-decoded. */
function battleIdOf(path: string): string {
  const encoded = path.slice("/battles/".length);
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/** Who the page is signed in as, and a way to drop the token. */
function showSession(token: string): void {
  const session = document.getElementById("session");
  if (!session) return;
  const { sub, exp } = tokenClaims(token);
  const until =
    typeof exp === "number" ? ` until ${new Date(exp * 1000).toLocaleTimeString()}` : "";
  const forget = button(
    "forget token",
    () => {
      forgetToken();
      location.reload();
    },
    { class: "link" },
  );
  session.replaceChildren(`inspecting as ${sub ?? "?"}${until} · `, forget);
}

/** The page shows nothing without a token: ask for one, and say how to make it. */
function askForToken(root: HTMLElement, problem?: string): void {
  const input = h("input", {
    id: "token-input",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "eyJhbGciOiJSUzI1NiIs…",
    "aria-label": "Inspection token",
  });
  const form = h(
    "form",
    { class: "token-form" },
    input,
    " ",
    h("button", { type: "submit" }, "Show battles"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    rememberToken(input.value);
    location.reload();
  });
  root.replaceChildren(
    h("h1", {}, "Battles"),
    problem ? h("p", { class: "error", role: "alert" }, problem) : "",
    h(
      "p",
      {},
      "Battles are shown to holders of an inspection token (scope ",
      h("code", {}, "inspect_battles"),
      "). Open the link the launcher prints, or paste a token made with:",
    ),
    h("pre", {}, TOKEN_COMMAND),
    form,
  );
}

start();
