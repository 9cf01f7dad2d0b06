/**
 * The policy editor: the current policy as JSON, a preview of what an edit would change (who gains
 * and loses what, and the diff) and then, only for the previewed text, a save that names the
 * version it was made against, so a change someone else saved meanwhile is never overwritten.
 */
import { type AdminApi, ApiError, type PolicyAnswer, type PolicyDoc } from "./api.ts";
import { canonicalJson } from "./diff.ts";
import { button, h, message, reason } from "./dom.ts";
import { diffView, effectsView } from "./preview.ts";

export function showPolicy(root: HTMLElement, api: AdminApi): void {
  const version = h("span", { id: "policy-version", class: "muted" });
  const editor = h("textarea", {
    id: "policy-editor",
    rows: "18",
    spellcheck: "false",
    autocomplete: "off",
    "aria-label": "Policy (JSON)",
  });
  const status = h("div", { id: "policy-status" });
  const preview = h("div", { id: "preview" });
  const previewButton = button("Preview", () => void runPreview(), { id: "preview-button" });
  const saveButton = button("Save", () => void save(), { id: "save-button", class: "primary" });
  const reloadButton = button("Reload", () => void load(), { id: "reload-button" });
  root.replaceChildren(
    h("h2", {}, "Policy ", version),
    h(
      "p",
      { class: "muted" },
      'Agent → server → "*" (everything the server offers, resources and prompts too) or a list ',
      "of tool names. Preview an edit to see what each agent would gain and lose; then save it.",
    ),
    editor,
    h("p", { class: "toolbar" }, previewButton, " ", saveButton, " ", reloadButton),
    status,
    preview,
  );

  let loaded: PolicyAnswer | undefined;
  // The editor's text the preview was made for, and the policy it parsed to: what Save sends.
  let previewed: { text: string; policy: PolicyDoc } | undefined;

  const settle = () => {
    saveButton.disabled = previewed === undefined || previewed.text !== editor.value;
  };
  editor.addEventListener("input", () => {
    if (previewed && previewed.text !== editor.value) {
      previewed = undefined;
      preview.replaceChildren(message("info", "Edited since the preview: preview again to save."));
    }
    settle();
  });

  async function load(note?: HTMLElement) {
    previewed = undefined;
    settle();
    try {
      loaded = await api.policy();
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
      return;
    }
    editor.value = canonicalJson(loaded.policy);
    version.textContent = `version ${loaded.version}`;
    status.replaceChildren(...(note ? [note] : []));
    preview.replaceChildren();
  }

  async function runPreview() {
    if (!loaded) return;
    const text = editor.value;
    const proposed = parsePolicy(text);
    if (typeof proposed === "string") {
      status.replaceChildren(message("error", proposed));
      return;
    }
    status.replaceChildren(message("info", "Asking the gateway what would change…"));
    try {
      const { changes } = await api.dryRun(proposed);
      if (editor.value !== text) return; // edited while the dry run ran; that preview is stale
      previewed = { text, policy: proposed };
      status.replaceChildren();
      preview.replaceChildren(
        h("h3", {}, "What changes"),
        effectsView(changes),
        h("h3", {}, "Diff against version ", loaded.version),
        diffView(loaded.policy, proposed),
      );
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
    settle();
  }

  async function save() {
    if (!loaded || !previewed || previewed.text !== editor.value) return;
    saveButton.disabled = true;
    const { text, policy } = previewed;
    try {
      const saved = await api.savePolicy(policy, loaded.version);
      await load(message("ok", `Saved: the policy is now at version ${saved.version}.`));
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        status.replaceChildren(conflict(error, text));
      } else {
        status.replaceChildren(message("error", reason(error)));
        settle();
      }
    }
  }

  /** Someone saved first: say so, offer their version, and keep this edit to copy from. */
  function conflict(error: ApiError, text: string): HTMLElement {
    return h(
      "div",
      { class: "conflict" },
      message(
        "error",
        "Someone else changed the policy since you loaded it, so this edit was not saved (",
        error.message,
        "). ",
        button(
          "Reload their version",
          () =>
            void load(
              h(
                "details",
                { class: "unsaved" },
                h("summary", {}, "Your edit that was not saved"),
                h("pre", {}, text),
              ),
            ),
          { id: "conflict-reload" },
        ),
      ),
    );
  }

  void load();
}

/** The editor's text as a policy document, or why it is not one. */
function parsePolicy(text: string): PolicyDoc | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `The policy is not valid JSON: ${reason(error)}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "The policy must be a JSON object: agent → server → grant.";
  }
  return value as PolicyDoc;
}
