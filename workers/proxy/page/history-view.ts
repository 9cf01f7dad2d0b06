/**
 * Every version of the gateway's state, newest first: who changed what, when. Any version's policy
 * can be made current again; the page previews that like an edit before it rolls back.
 */
import { type AdminApi, ApiError, type Change, type HistoryEntry } from "./api.ts";
import { button, h, message, reason, time } from "./dom.ts";
import { diffView, effectsView } from "./preview.ts";

const PAGE_SIZE = 50;

export function showHistory(root: HTMLElement, api: AdminApi): void {
  const restore = h("div", { id: "restore" });
  const list = h("ol", { id: "history", class: "history" });
  const status = h("div", { id: "history-status" }, message("info", "Loading…"));
  const older = button("Older versions", () => void more(), { id: "history-older" });
  older.hidden = true;
  root.replaceChildren(
    h("h2", {}, "History"),
    h(
      "p",
      { class: "muted" },
      "Each change to the policy, backends, agents or revocations is a version. Restoring a ",
      "version's policy makes a new version; nothing is erased.",
    ),
    restore,
    status,
    list,
    older,
  );

  let oldest: string | undefined;

  async function reload(note?: HTMLElement) {
    list.replaceChildren();
    oldest = undefined;
    await more();
    if (note) status.replaceChildren(note);
  }

  async function more() {
    try {
      const { versions } = await api.history(PAGE_SIZE, oldest);
      list.append(...versions.map(entry));
      oldest = versions.at(-1)?.version ?? oldest;
      older.hidden = versions.length < PAGE_SIZE;
      status.replaceChildren();
    } catch (error) {
      status.replaceChildren(message("error", reason(error)));
    }
  }

  function entry(item: HistoryEntry): HTMLElement {
    const changedPolicy = item.version === item.policyVersion;
    return h(
      "li",
      { "data-version": item.version, class: changedPolicy ? "policy-change" : undefined },
      h(
        "p",
        { class: "entry-head" },
        h("strong", {}, `version ${item.version}`),
        " · ",
        time(item.at),
        " · ",
        h("span", { class: "actor" }, item.actor),
        " · ",
        h("code", { class: "action" }, item.action),
        changedPolicy
          ? button("Restore this policy…", () => void propose(item.version), {
              class: "restore",
            })
          : "",
      ),
      changesList(item.changes),
    );
  }

  /** Previews making `target`'s policy current, with a button to do it. */
  async function propose(target: string) {
    restore.replaceChildren(message("info", `Comparing version ${target} with the policy now…`));
    try {
      const [current, old] = await Promise.all([api.policy(), api.policyAt(target)]);
      const { changes } = await api.dryRun(old.policy);
      const confirm = button(
        `Roll back to version ${target}`,
        () => void rollback(target, current.version),
        { id: "rollback-confirm", class: "primary" },
      );
      restore.replaceChildren(
        h(
          "section",
          { class: "panel" },
          h("h3", {}, `Restore the policy of version ${target}`),
          effectsView(changes),
          diffView(current.policy, old.policy),
          h(
            "p",
            { class: "toolbar" },
            confirm,
            " ",
            button("Cancel", () => restore.replaceChildren()),
          ),
        ),
      );
    } catch (error) {
      restore.replaceChildren(message("error", reason(error)));
    }
  }

  async function rollback(target: string, policyVersion: string) {
    try {
      const result = await api.rollback(target, policyVersion);
      restore.replaceChildren();
      await reload(
        message(
          "ok",
          `Rolled back: the policy of version ${target} is current, as version ${result.version}.`,
        ),
      );
    } catch (error) {
      const text =
        error instanceof ApiError && error.status === 412
          ? `Someone else changed the policy meanwhile (${error.message}). Look again before rolling back.`
          : reason(error);
      restore.replaceChildren(
        message(
          "error",
          text,
          " ",
          button("Compare again", () => void propose(target)),
        ),
      );
    }
  }

  void reload();
}

/** A version's changes: where, and the value before and after. */
function changesList(changes: Change[]): HTMLElement {
  if (changes.length === 0) return h("p", { class: "muted" }, "no changes");
  return h(
    "ul",
    { class: "changes" },
    ...changes.map((change) =>
      h(
        "li",
        {},
        h("code", {}, change.path),
        ": ",
        "before" in change ? h("code", { class: "before" }, JSON.stringify(change.before)) : "—",
        " → ",
        "after" in change ? h("code", { class: "after" }, JSON.stringify(change.after)) : "—",
      ),
    ),
  );
}
