/**
 * The list of battles, newest first, filtered by status and paged with the API's cursors. The
 * first page refreshes itself every few seconds while the tab is visible, so new battles appear.
 */
import type { BattleStatus, BattleSummary } from "../../../durable-objects/battle-types.ts";
import { ApiError, listBattles } from "./api.ts";
import { battleHref, h, time } from "./dom.ts";

const PAGE_SIZE = 25;
const REFRESH_MS = 5000;

/** Shows the battle list in `root`; `onAuthError` is told when the token fails. */
export function showList(
  root: HTMLElement,
  token: string,
  onAuthError: (error: ApiError) => void,
): void {
  document.title = "Battles · MCPCP";
  const params = new URLSearchParams(location.search);
  const initial = params.get("status");
  let status: BattleStatus | undefined =
    initial === "ongoing" || initial === "ended" ? initial : undefined;
  // Cursors of the pages before this one, to go back to newer battles.
  const previous: (string | undefined)[] = [];
  let cursor: string | undefined;
  let refresh: number | undefined;

  const filter = h(
    "select",
    { id: "status-filter", "aria-label": "Status" },
    h("option", { value: "" }, "All battles"),
    h("option", { value: "ongoing" }, "Ongoing"),
    h("option", { value: "ended" }, "Ended"),
  );
  filter.value = status ?? "";
  const body = h("div", { id: "battles" }, h("p", { class: "muted" }, "Loading…"));
  const newer = h("button", { type: "button", id: "newer" }, "← Newer");
  const older = h("button", { type: "button", id: "older" }, "Older →");
  root.replaceChildren(
    h("h1", {}, "Battles"),
    h("p", { class: "toolbar" }, h("label", {}, "Show ", filter)),
    body,
    h("p", { class: "pager" }, newer, " ", older),
  );

  const load = async () => {
    window.clearTimeout(refresh);
    let page: Awaited<ReturnType<typeof listBattles>>;
    try {
      page = await listBattles(token, { status, cursor, limit: PAGE_SIZE });
    } catch (error) {
      if (error instanceof ApiError && error.needsToken) return onAuthError(error);
      const message = error instanceof Error ? error.message : String(error);
      body.replaceChildren(h("p", { class: "error", role: "alert" }, message));
      return;
    }
    body.replaceChildren(
      page.battles.length === 0
        ? h("p", { class: "muted" }, status ? `No ${status} battles.` : "No battles yet.")
        : table(page.battles),
    );
    newer.disabled = previous.length === 0;
    older.disabled = page.next_cursor === null;
    older.onclick = () => {
      previous.push(cursor);
      cursor = page.next_cursor ?? undefined;
      void load();
    };
    if (cursor === undefined) {
      refresh = window.setTimeout(() => {
        if (document.visibilityState === "visible") void load();
        else refresh = window.setTimeout(() => void load(), REFRESH_MS);
      }, REFRESH_MS);
    }
  };

  newer.onclick = () => {
    cursor = previous.pop();
    void load();
  };
  filter.addEventListener("change", () => {
    status = filter.value === "ongoing" || filter.value === "ended" ? filter.value : undefined;
    previous.length = 0;
    cursor = undefined;
    const search = status ? `?status=${status}` : "";
    history.replaceState(history.state, "", `/battles${search}`);
    void load();
  });
  void load();
}

function table(battles: BattleSummary[]): HTMLTableElement {
  return h(
    "table",
    { class: "battles" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["Battle", "Status", "Winner", "Events", "Agents", "Started", "Last update"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      ...battles.map((battle) =>
        h(
          "tr",
          { "data-battle": battle.id },
          h("td", {}, h("a", { href: battleHref(battle.id) }, battle.id)),
          h("td", {}, h("span", { class: `badge status-${battle.status}` }, battle.status)),
          h(
            "td",
            {},
            battle.winner && h("span", { class: `winner winner-${battle.winner}` }, battle.winner),
          ),
          h("td", { class: "number" }, String(battle.event_count)),
          h("td", {}, battle.agents.join(", ")),
          h("td", {}, time(battle.created_at)),
          h("td", {}, time(battle.updated_at)),
        ),
      ),
    ),
  );
}
