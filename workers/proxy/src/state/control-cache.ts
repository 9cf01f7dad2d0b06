/**
 * An isolate's copy of the run-time state (`control/document.ts`), kept fresh from the
 * ControlStore without making requests wait for it.
 *
 * A request is served from the copy the isolate holds. When that copy was last checked more than
 * CHECK_AFTER_MS ago the request starts a check in the background (after its answer); when more
 * than MUST_CHECK_AFTER_MS ago (an isolate that was idle) the request waits for the check, at most
 * STORE_TIMEOUT_MS. So a new version is served by every isolate within MUST_CHECK_AFTER_MS plus
 * one round trip to the store, and under steady traffic within CHECK_AFTER_MS plus one.
 *
 * A check sends what the copy is, by hash and version, not the documents: the store sends a version
 * back only when it is newer, and its policy only when the isolate does not hold it (its deployed
 * POLICY, or the policy of the version it serves). So a poll costs the same whatever the policy's
 * size, and a policy is validated once per change: POLICY by `loadConfig`, each later one here.
 *
 * A store that cannot be reached leaves the last version known in service: `health()` says since
 * when, and requests stop waiting for it (background checks go on) until it answers again. An
 * isolate that has never loaded a version fails closed: its requests are refused with 503.
 */
import type { BackendOptions, Control } from "../control/document.ts";
import { readControl } from "../control/document.ts";
import { log } from "../core/log.ts";
import { hasRules, loadRuleCompiler, type Policy, type ReadPolicy } from "../core/policy.ts";
import { describe, fail } from "../errors.ts";
import type { ControlStore, Holding, Seed, SyncAnswer, SyncedVersion } from "./control-store.ts";
import { CONTROL_STORE_NAME } from "./control-store.ts";

/** A copy older than this is checked in the background. */
export const CHECK_AFTER_MS = 500;
/** A copy older than this is checked before the request is served. */
export const MUST_CHECK_AFTER_MS = 1_500;
/** How long a request waits for the store. */
export const STORE_TIMEOUT_MS = 1_000;
/** After the store failed, how long requests do not wait for it again. */
const PATIENCE_AFTER_FAILURE_MS = 5_000;

/** What `/healthz` says of the copy. */
export interface ControlHealth {
  version: number | null;
  checked_ms_ago: number | null;
  /** Present while the store cannot be reached: the last version known is being served. */
  unreachable?: { since: string; error: string };
}

export class ControlCache {
  private control: Control | undefined;
  private checkedAt = 0;
  private failedAt = 0;
  private failing: { since: number; error: string } | undefined;
  private checking: Promise<void> | undefined;
  private checkingSince = 0;

  private readonly namespace: DurableObjectNamespace<ControlStore>;
  private readonly seed: Seed;
  /** The deployed POLICY as `loadConfig` read it: the seed's policy, validated and indexed. */
  private readonly deployed: ReadPolicy;
  private readonly options: BackendOptions;

  /**
   * `deployed` is the index `loadConfig` built of `seed.policy`, so that a version whose policy
   * is the seed's is served from it, not read again. `options.compile`, when given, compiles the
   * rules of the policies read here (else the rule compiler loads when one has rules).
   */
  constructor(
    namespace: DurableObjectNamespace<ControlStore>,
    seed: Seed,
    deployed: Policy,
    options: BackendOptions,
  ) {
    this.namespace = namespace;
    this.seed = seed;
    this.deployed = { document: seed.policy, policy: deployed };
    this.options = options;
  }

  /** The version to serve this request from; `defer` runs a background check after the answer. */
  async get(defer?: (work: Promise<unknown>) => void): Promise<Control> {
    const now = Date.now();
    const age = now - this.checkedAt;
    if (this.control === undefined) {
      await patiently(this.check());
    } else if (age > MUST_CHECK_AFTER_MS && now - this.failedAt > PATIENCE_AFTER_FAILURE_MS) {
      await patiently(this.check());
    } else if (age > CHECK_AFTER_MS && defer) {
      // Only a request that keeps it alive starts one: a check left pending by a request that
      // ended never settles, and every later request that joined it would fail.
      defer(this.check());
    }
    if (this.control === undefined) {
      return fail({
        kind: "control_unavailable",
        detail: this.failing?.error ?? "the control store has not answered yet",
      });
    }
    return this.control;
  }

  /** Checks now, whatever the copy's age (after a change this isolate made itself). */
  refresh(): Promise<void> {
    return this.check();
  }

  health(): ControlHealth {
    return {
      version: this.control?.version ?? null,
      checked_ms_ago: this.checkedAt === 0 ? null : Date.now() - this.checkedAt,
      ...(this.failing
        ? {
            unreachable: {
              since: new Date(this.failing.since).toISOString(),
              error: this.failing.error,
            },
          }
        : {}),
    };
  }

  /**
   * One check at a time: requests that find one running wait for it. A check whose request ended
   * under it may never settle (workerd settles nothing for a request that is over, its timer
   * included), so one older than twice the store's timeout is given up and a new one starts.
   */
  private check(): Promise<void> {
    const now = Date.now();
    if (this.checking === undefined || now - this.checkingSince > 2 * STORE_TIMEOUT_MS) {
      const checking: Promise<void> = this.ask().finally(() => {
        if (this.checking === checking) this.checking = undefined;
      });
      this.checking = checking;
      this.checkingSince = now;
    }
    return this.checking;
  }

  private async ask(): Promise<void> {
    // A stub belongs to the request that made it: one per check.
    const store = this.namespace.get(this.namespace.idFromName(CONTROL_STORE_NAME));
    const holding: Holding = {
      seed: this.seed.hash,
      version: this.control?.version ?? null,
      policyVersion: this.control?.policyVersion ?? null,
    };
    let timer: ReturnType<typeof setTimeout> | null = null;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${STORE_TIMEOUT_MS} ms`)),
          STORE_TIMEOUT_MS,
        );
      });
      // The seed goes whole only to a store that has never seen it: once per deployment.
      const exchange = async (): Promise<SyncAnswer> => {
        const answer = await store.sync(holding);
        return answer.kind === "send_seed" ? store.sync(holding, this.seed) : answer;
      };
      const answer = await Promise.race([exchange(), timeout]);
      this.checkedAt = Date.now();
      if (this.failing) {
        log("info", "control_store_back", { since: new Date(this.failing.since).toISOString() });
        this.failing = undefined;
      }
      if (answer.kind === "current") return;
      if (answer.kind === "send_seed") throw new Error("the control store refused the seed");
      const control = await this.read(answer.version);
      if (!control.ok) {
        // The store validated it with the same rules: this is a bug, and the old copy serves on.
        log("error", "control_version_invalid", {
          version: answer.version.version,
          error: control.error,
        });
        return;
      }
      this.control = control.value;
    } catch (e) {
      const now = Date.now();
      this.failedAt = now;
      if (!this.failing) log("error", "control_store_unreachable", { error: describe(e) });
      this.failing = { since: this.failing?.since ?? now, error: describe(e) };
    } finally {
      clearTimeout(timer);
    }
  }

  /** What to serve from a version the store sent: its policy read here only if it is new. */
  private async read(version: SyncedVersion): Promise<ReturnType<typeof readControl>> {
    const { policy, ...snapshot } = version;
    if (policy === "seed") return readControl(snapshot, this.options, this.deployed);
    if (policy === "held") {
      if (!this.control) return { ok: false, error: "the store names a policy this isolate lacks" };
      const held = { document: this.control.document.policy, policy: this.control.policy };
      return readControl(snapshot, this.options, held);
    }
    const compile =
      this.options.compile ?? (hasRules(policy) ? await loadRuleCompiler() : undefined);
    return readControl(
      { ...snapshot, document: { ...snapshot.document, policy } },
      { ...this.options, ...(compile ? { compile } : {}) },
    );
  }
}

/**
 * Waits for a check at most a little longer than the check itself would, on this request's own
 * timer: a check started by another request that has ended may never settle.
 */
function patiently(check: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, STORE_TIMEOUT_MS + 100);
  });
  return Promise.race([check, bound]).finally(() => clearTimeout(timer));
}

/** SHA-256 of a seed's policy and backends, hex. */
export async function seedHash(seed: Omit<Seed, "hash">): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify([seed.policy, seed.backends]));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
