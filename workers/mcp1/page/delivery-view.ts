/**
 * How far the battle platform has this battle (BATTLE_WEBHOOK_URL; docs/design.md, "Battle
 * delivery"): "delivered up to seq N of M", and while behind after a failure, the last error and
 * when the next attempt is due. Nothing when webhooks are off.
 */
import type { DeliveryStatus } from "../../../durable-objects/battle-types.ts";
import { h, time } from "./dom.ts";

/** Whether some events are not yet delivered. */
export function deliveryBehind(status: DeliveryStatus | null): boolean {
  return status !== null && status.delivered_seq < status.last_seq;
}

/** The delivery line, or an empty placeholder when webhooks are off. */
export function renderDelivery(status: DeliveryStatus | null): HTMLElement {
  if (status === null) return h("p", { id: "delivery", hidden: "" });
  const behind = deliveryBehind(status);
  return h(
    "p",
    {
      id: "delivery",
      class: `delivery ${behind ? "delivery-behind" : "delivery-done"}`,
      "data-delivered": String(status.delivered_seq),
      "data-last": String(status.last_seq),
    },
    h(
      "span",
      { class: "delivery-progress" },
      `Platform: delivered up to seq ${status.delivered_seq} of ${status.last_seq}`,
    ),
    behind &&
      status.last_error !== null &&
      h(
        "span",
        { class: "delivery-error" },
        ` · last error (${status.failures} in a row): ${status.last_error}`,
      ),
    behind &&
      status.next_attempt_at !== null &&
      h("span", { class: "delivery-next" }, " · next attempt ", time(status.next_attempt_at)),
  );
}
