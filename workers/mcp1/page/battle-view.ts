/**
 * One battle: its status and winner, and the timeline of its events with agent, reporter, detail
 * and sanitised markdown. It loads the log over the JSON API, then follows the live feed; events
 * are keyed by `seq`, so an event seen twice (feed and page load) shows once, and a gap in the
 * sequence triggers a read of what was missed.
 */
import type {
  Battle,
  BattleEvent,
  JsonObject,
  LiveMessage,
} from "../../../durable-objects/battle-types.ts";
import { ApiError, getBattle } from "./api.ts";
import { deliveryBehind, renderDelivery } from "./delivery-view.ts";
import { h, time } from "./dom.ts";
import { type LiveState, openLive } from "./live.ts";
import { renderMarkdown } from "./markdown.ts";

/** How often the page re-reads a delivery that is behind. */
const DELIVERY_POLL_MS = 2000;

const LIVE_LABELS: Record<LiveState, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  ended: "battle ended",
  expired: "token expired: reload with a new one",
};

/** Shows battle `id` in `root` and keeps it current; `onAuthError` is told when the token fails. */
export async function showBattle(
  root: HTMLElement,
  id: string,
  token: string,
  onAuthError: (error: ApiError) => void,
): Promise<void> {
  document.title = `Battle ${id} · MCPCP`;
  const events = new Map<number, BattleEvent>();
  let battle: Battle | null = null;
  /** Highest seq up to which every event is shown. */
  let known = 0;

  const summary = h("section", { class: "battle-summary", id: "summary" });
  let delivery = renderDelivery(null);
  const liveBadge = h("span", { id: "live", class: "live", "data-state": "connecting" });
  const timeline = h("ol", { id: "timeline", class: "timeline" });
  const empty = h("p", { class: "muted", id: "empty" }, "No events yet. Waiting for the first…");
  root.replaceChildren(
    h("p", {}, h("a", { href: "/battles" }, "← All battles")),
    h("h1", {}, "Battle ", h("code", {}, id), " ", liveBadge),
    summary,
    delivery,
    h("h2", {}, "Timeline"),
    empty,
    timeline,
  );

  const renderSummary = () => {
    if (!battle) return summary.replaceChildren();
    const agents = new Set<string>();
    const reporters = new Set<string>();
    for (const event of events.values()) {
      if (event.agent) agents.add(event.agent);
      reporters.add(event.reported_by);
    }
    summary.replaceChildren(
      h(
        "p",
        { class: "status-line" },
        h("span", { id: "status", class: `badge status-${battle.status}` }, battle.status),
        battle.winner &&
          h(
            "span",
            { id: "winner", class: `winner winner-${battle.winner}` },
            battle.winner === "draw" ? "Result: draw" : `Winner: ${battle.winner}`,
          ),
      ),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Started"),
        h("dd", {}, time(battle.created_at)),
        h("dt", {}, battle.status === "ended" ? "Ended" : "Last update"),
        h("dd", {}, time(battle.updated_at)),
        h("dt", {}, "Events"),
        h("dd", { id: "event-count" }, String(Math.max(known, events.size))),
        h("dt", {}, "Agents (verified)"),
        h("dd", {}, [...agents].join(", ") || "none named"),
        h("dt", {}, "Reporters (as the agents say)"),
        h("dd", {}, [...reporters].join(", ")),
      ),
    );
  };

  const setBattle = (next: Battle | null) => {
    // The feed and the API can answer out of order; never let an older view replace a newer one.
    if (next && (!battle || next.updated_at >= battle.updated_at)) battle = next;
  };

  const addEvent = (event: BattleEvent) => {
    if (events.has(event.seq)) return;
    events.set(event.seq, event);
    const item = renderEvent(event);
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    // Mostly appended at the end; an event that arrives early is placed by its seq.
    let before: Element | null = null;
    for (let node = timeline.lastElementChild; node; node = node.previousElementSibling) {
      if (Number((node as HTMLElement).dataset.seq) < event.seq) break;
      before = node;
    }
    timeline.insertBefore(item, before);
    while (events.has(known + 1)) known++;
    empty.hidden = true;
    if (atBottom && known > 1) item.scrollIntoView({ block: "end" });
  };

  // Reads the log from `known` on until the end; calls that overlap fold into one more pass.
  let syncing: Promise<void> | null = null;
  let again = false;
  const sync = (): Promise<void> => {
    if (syncing) {
      again = true;
      return syncing;
    }
    syncing = (async () => {
      do {
        again = false;
        for (;;) {
          const state = await getBattle(token, id, known);
          setBattle(state.battle);
          showDelivery(state.delivery);
          for (const event of state.events) addEvent(event);
          if (state.next_after === null) break;
        }
      } while (again);
      renderSummary();
    })().finally(() => {
      syncing = null;
    });
    return syncing;
  };

  // Delivery moves on without events (retries), so while it is behind the page asks again.
  let deliveryCheck: number | undefined;
  const checkDeliverySoon = () => {
    if (deliveryCheck !== undefined || delivery.hidden) return;
    deliveryCheck = window.setTimeout(() => {
      deliveryCheck = undefined;
      void catchUp();
    }, DELIVERY_POLL_MS);
  };
  const showDelivery = (status: Parameters<typeof renderDelivery>[0]) => {
    const next = renderDelivery(status);
    delivery.replaceWith(next);
    delivery = next;
    if (deliveryBehind(status)) checkDeliverySoon();
  };

  const catchUp = () =>
    sync().catch((error: unknown) => {
      if (error instanceof ApiError && error.needsToken) return onAuthError(error);
      if (!(error instanceof ApiError && error.status === 404)) showError(root, error);
    });

  try {
    await sync();
  } catch (error) {
    if (error instanceof ApiError && error.needsToken) return onAuthError(error);
    if (!(error instanceof ApiError && error.status === 404)) return showError(root, error);
    // Not reported yet: watch for its first event.
  }
  // (The closures above assign `battle`; the compiler cannot see that and narrows it to null.)
  if ((battle as Battle | null)?.status === "ended") {
    liveBadge.dataset.state = "ended";
    liveBadge.textContent = LIVE_LABELS.ended;
    return;
  }

  const close = openLive(id, token, {
    state(state) {
      liveBadge.dataset.state = state;
      liveBadge.textContent = LIVE_LABELS[state];
      if (state === "ended") void catchUp();
    },
    message(message: LiveMessage) {
      if (message.type === "hello") {
        setBattle(message.battle);
        if (message.last_seq > known) void catchUp();
      } else {
        setBattle(message.battle);
        addEvent(message.event);
        if (message.event.seq > known) void catchUp();
        checkDeliverySoon();
      }
      renderSummary();
      // The result event is the last: nothing more will come, whatever the socket does next.
      if (message.battle?.status === "ended") {
        close();
        liveBadge.dataset.state = "ended";
        liveBadge.textContent = LIVE_LABELS.ended;
      }
    },
  });
  window.addEventListener("pagehide", close, { once: true });
}

function renderEvent(event: BattleEvent): HTMLLIElement {
  return h(
    "li",
    { class: `event kind-${event.kind}`, id: `event-${event.seq}`, "data-seq": String(event.seq) },
    h(
      "div",
      { class: "event-head" },
      h("span", { class: "seq" }, `#${event.seq}`),
      time(event.at),
      h("span", { class: `badge kind-badge kind-${event.kind}` }, event.kind),
    ),
    h("p", { class: "message" }, event.message),
    h(
      "p",
      { class: "who" },
      // The agent the proxy verified comes first; reported_by is only what that agent says.
      "reported by ",
      event.agent === null
        ? h("em", { class: "agent" }, "an unverified reporter")
        : h("strong", { class: "agent" }, event.agent),
      " (says: ",
      h("span", { class: "reporter" }, event.reported_by),
      ")",
    ),
    event.detail && renderDetail(event.detail),
    event.markdown_content &&
      h("div", { class: "markdown" }, renderMarkdown(event.markdown_content)),
  );
}

/** `detail` as a definition list: plain values as text, nested ones as indented JSON. */
function renderDetail(detail: JsonObject): HTMLElement {
  const list = h("dl", { class: "detail-list" });
  for (const [key, value] of Object.entries(detail)) {
    const shown =
      value !== null && typeof value === "object"
        ? h("pre", {}, JSON.stringify(value, null, 2))
        : String(value);
    list.append(h("dt", {}, key), h("dd", {}, shown));
  }
  return h("details", { class: "detail", open: "" }, h("summary", {}, "Detail"), list);
}

function showError(root: HTMLElement, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  root.append(h("p", { class: "error", role: "alert" }, `Could not load the battle: ${message}`));
}
