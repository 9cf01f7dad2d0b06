/**
 * Delivery of one battle's events to the battle platform's backend (docs/design.md, "Battle
 * delivery"; the wire contract in common/battle-webhook.ts). The BattleSession owns one of these;
 * it only tells it when an event was stored and calls it from its alarm.
 *
 * At least once, in order, nothing dropped: `delivery.delivered_seq` in the battle's SQLite is the
 * last event the platform acknowledged with a 2xx. The alarm POSTs the events after it one at a
 * time; the first failure (any other status, a network error, or no answer within the timeout)
 * ends the run and stores when to try again, with capped exponential backoff and jitter. Every
 * status other than 2xx is retried, a 4xx too, since dropping the event is not allowed, but it is
 * logged as a refusal, which a person must look at. The state and the alarm are durable, so
 * retries go on across restarts and evictions; an attempt cut off mid-POST is made again, which
 * is why the platform de-duplicates by Idempotency-Key.
 *
 * Storage (its own table, created here, so the battle's own migrations are untouched):
 *
 *   delivery (one_row = 1, delivered_seq, failures, next_attempt_at, last_error, last_error_at)
 */
import {
  createDeliverySigner,
  type DeliverySigner,
  deliveryUrl,
  IDEMPOTENCY_HEADER,
  idempotencyKey,
  parseWebhookConfig,
  retryDelayMs,
  SIGNATURE_HEADER,
  type WebhookConfig,
  type WebhookVars,
} from "../common/battle-webhook.ts";
import type { BattleEvent, DeliveryStatus, Winner } from "./battle-types.ts";

/** What the delivery reads from the battle it belongs to. */
export interface DeliverySource {
  /** The battle's id, or null before its first event. */
  battleId(): string | null;
  lastSeq(): number;
  /** Event `seq`, and the battle's winner if that event is the result. */
  eventAt(seq: number): { event: BattleEvent; winner: Winner | null } | null;
}

/** Most events one alarm run delivers before it hands the alarm back (index pushes wait on it). */
const EVENTS_PER_RUN = 100;

type DeliveryRow = {
  delivered_seq: number;
  failures: number;
  next_attempt_at: number | null;
  last_error: string | null;
  last_error_at: string | null;
};

export class BattleDelivery {
  private readonly config: ReturnType<typeof parseWebhookConfig>;
  private signer: Promise<DeliverySigner> | null = null;
  private readonly storage: DurableObjectStorage;
  private readonly source: DeliverySource;

  constructor(storage: DurableObjectStorage, vars: WebhookVars, source: DeliverySource) {
    this.storage = storage;
    this.source = source;
    this.config = parseWebhookConfig(vars);
    if (this.enabled) {
      storage.sql.exec(`CREATE TABLE IF NOT EXISTS delivery (
         one_row INTEGER PRIMARY KEY CHECK (one_row = 1),
         delivered_seq INTEGER NOT NULL,
         failures INTEGER NOT NULL,
         next_attempt_at INTEGER,
         last_error TEXT,
         last_error_at TEXT
       )`);
      storage.sql.exec(
        "INSERT OR IGNORE INTO delivery (one_row, delivered_seq, failures) VALUES (1, 0, 0)",
      );
    }
  }

  /** Whether BATTLE_WEBHOOK_URL is set (a wrong setting counts: it is retried and shown). */
  get enabled(): boolean {
    return !this.config.ok || this.config.config !== null;
  }

  /** When the alarm should next run for delivery, or null when nothing is waiting. */
  dueAt(): number | null {
    if (!this.enabled) return null;
    const row = this.row();
    if (row.delivered_seq >= this.source.lastSeq()) return null;
    return row.next_attempt_at ?? Date.now();
  }

  /** What the page and the JSON API show; null when webhooks are off. */
  status(): DeliveryStatus | null {
    if (!this.enabled) return null;
    const row = this.row();
    const behind = row.delivered_seq < this.source.lastSeq();
    return {
      delivered_seq: row.delivered_seq,
      last_seq: this.source.lastSeq(),
      failures: row.failures,
      last_error: row.last_error,
      last_error_at: row.last_error_at,
      next_attempt_at:
        behind && row.next_attempt_at !== null ? new Date(row.next_attempt_at).toISOString() : null,
    };
  }

  /** Sets the alarm for what is due, unless one is set earlier (an index push at "now"). */
  async schedule(): Promise<void> {
    const due = this.dueAt();
    if (due === null) return;
    const current = await this.storage.getAlarm();
    if (current === null || current > due) await this.storage.setAlarm(due);
  }

  /**
   * Called from the battle's alarm: delivers what is due, in order, until a failure or the end
   * of the log, then schedules the next run. Never throws: a failure is stored, not raised.
   */
  async run(): Promise<void> {
    const due = this.dueAt();
    if (due === null) return;
    // Woken early (for the index): keep the backoff, not the early time.
    if (due > Date.now()) return this.schedule();
    const battleId = this.source.battleId();
    if (battleId === null) return;
    for (let sent = 0; sent < EVENTS_PER_RUN; sent++) {
      const seq = this.row().delivered_seq + 1;
      const next = this.source.eventAt(seq);
      if (!next) return;
      const failure = await this.deliver(battleId, next.event, next.winner);
      if (failure !== null) {
        this.recordFailure(battleId, seq, failure);
        return this.schedule();
      }
      this.storage.sql.exec(
        `UPDATE delivery SET delivered_seq = ?, failures = 0, next_attempt_at = NULL,
           last_error = NULL, last_error_at = NULL`,
        seq,
      );
    }
    // More than one run's worth: go on at once, after whatever else the alarm has to do.
    await this.schedule();
  }

  /** POSTs one event; null when the platform took it, else why not. */
  private async deliver(
    battleId: string,
    event: BattleEvent,
    winner: Winner | null,
  ): Promise<string | null> {
    if (!this.config.ok) return this.config.error;
    const config = this.config.config as WebhookConfig;
    const body = JSON.stringify(
      winner === null ? { battle_id: battleId, event } : { battle_id: battleId, event, winner },
    );
    let response: Response;
    try {
      this.signer ??= createDeliverySigner(config);
      const signature = await (await this.signer).sign({ battleId, seq: event.seq, body });
      response = await fetch(deliveryUrl(config.url, battleId), {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          [IDEMPOTENCY_HEADER]: idempotencyKey(battleId, event.seq),
          [SIGNATURE_HEADER]: signature,
        },
        body,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
    } catch (error) {
      const name = (error as { name?: string } | null)?.name;
      if (name === "TimeoutError" || name === "AbortError") {
        return `no answer within ${config.timeoutMs} ms`;
      }
      return `request failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    // The answer's body is not needed; reading it frees the connection.
    const text = await response.text().catch(() => "");
    if (response.ok) return null;
    return `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
  }

  private recordFailure(battleId: string, seq: number, error: string): void {
    const failures = this.row().failures + 1;
    const config = this.config.ok ? this.config.config : null;
    const delay = retryDelayMs(
      failures,
      config?.backoffMs ?? 1000,
      config?.maxBackoffMs ?? 5 * 60_000,
    );
    const nextAttemptAt = Date.now() + delay;
    this.storage.sql.exec(
      "UPDATE delivery SET failures = ?, next_attempt_at = ?, last_error = ?, last_error_at = ?",
      failures,
      nextAttemptAt,
      error,
      new Date().toISOString(),
    );
    // A 4xx means the platform refuses the event as it is: retrying alone will not fix that.
    const refused = /^HTTP 4\d\d/.test(error);
    const log = refused ? console.error : console.warn;
    log(
      JSON.stringify({
        event: refused ? "battle_delivery_refused" : "battle_delivery_failed",
        battle_id: battleId,
        seq,
        failures,
        error,
        retry_in_ms: delay,
      }),
    );
  }

  private row(): DeliveryRow {
    return this.storage.sql
      .exec<DeliveryRow>(
        "SELECT delivered_seq, failures, next_attempt_at, last_error, last_error_at FROM delivery",
      )
      .one();
  }
}
