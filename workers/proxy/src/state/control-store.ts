/**
 * ControlStore: the one source of truth at run time for the policy, the backend registry, agent
 * records and revocations (`control/document.ts`), as numbered versions in SQLite. One instance
 * (named `CONTROL_STORE_NAME`) serves every isolate; isolates poll it (`sync`, from
 * `state/control-cache.ts`) with what they hold, by hash and version, and get a version back only
 * when it is newer, its policy only when they do not hold it.
 *
 * Storage layout:
 *   versions(version PK, policy_version, at, actor, action, changes JSON, document JSON)
 *     every version whole, so any one can be shown or rolled back to; the newest is the truth.
 *   seeds(hash PK, version)
 *     the deployed configurations (POLICY and the configured backends) already taken in.
 *
 * Seeding: the first isolate to ask brings the deployed configuration, which becomes version 1.
 * After that the store is the truth; a configuration it has never seen (policy.json edited, a
 * backend added to the environment, then a restart or deploy) is taken in once, as a new version
 * by `deploy` that keeps agents and revocations, and can be rolled back like any other.
 *
 * Every method reads and writes without awaiting in between (the one await, for the rule
 * compiler, comes first), so each is one atomic step: two writers with the same `If-Match` cannot
 * both pass.
 */
import { DurableObject } from "cloudflare:workers";
import {
  type AgentClient,
  type AgentEntry,
  type BackendEntry,
  type Change,
  type ControlDocument,
  type ControlRest,
  diffDocuments,
  MAX_REVOCATIONS,
  pruned,
  readControl,
  type Snapshot,
} from "../control/document.ts";
import {
  type CompileRule,
  hasRules,
  loadRuleCompiler,
  type PolicyDocument,
} from "../core/policy.ts";

/** The name of the one store every isolate asks. */
export const CONTROL_STORE_NAME = "control";

/** The deployed configuration an isolate seeds the store with, when the store does not know it. */
export interface Seed {
  /** SHA-256 of the policy and backends, hex: how the store tells configurations apart. */
  hash: string;
  policy: PolicyDocument;
  backends: BackendEntry[];
}

/**
 * What an isolate tells the store on every sync: what it holds, by hash and version, never the
 * documents themselves.
 */
export interface Holding {
  /** `Seed.hash` of the deployed configuration the isolate runs with. */
  seed: string;
  /** The version it serves, or null before its first. */
  version: number | null;
  /** That version's `policyVersion`, or null before its first. */
  policyVersion: number | null;
}

/** A version as a sync hands it out: its policy only when the isolate does not hold it. */
export interface SyncedVersion extends Omit<Snapshot, "document"> {
  document: ControlRest;
  /**
   * The policy, or which policy the isolate holds already that this version's is: that of the
   * version it serves (`held`), or its deployed POLICY (`seed`).
   */
  policy: PolicyDocument | "held" | "seed";
}

/**
 * The store's answer to a sync: the isolate holds the newest version (`current`), a newer one,
 * or the store has never seen the isolate's seed and needs it whole before it can answer.
 */
export type SyncAnswer =
  | { kind: "current" }
  | { kind: "send_seed" }
  | { kind: "changed"; version: SyncedVersion };

export type ChangeResult =
  | { ok: true; snapshot: Snapshot; changes: Change[] }
  | { ok: false; status: 400 | 404 | 409 | 412 | 428; error: string };

/** A history entry: who changed what, when. */
export interface HistoryEntry {
  version: number;
  policyVersion: number;
  at: string;
  actor: string;
  action: string;
  changes: Change[];
}

/** How long a `jti` revocation is kept when the operator does not say when the token expires. */
export const DEFAULT_REVOCATION_DAYS = 30;

type VersionRow = {
  version: number;
  policy_version: number;
  at: string;
  actor: string;
  action: string;
  changes: string;
  document: string;
};

export class ControlStore extends DurableObject {
  private latest: Snapshot | undefined;
  /** Each deployed configuration taken in, by hash: the version that took it in. */
  private seeds: Map<string, number> | undefined;
  private compile: CompileRule | undefined;

  /**
   * Loads the rule compiler if the newest version's policy or `proposed` has rules. A method
   * awaits this first and then runs to its end without awaiting again, so it stays one step.
   */
  private async ready(proposed?: PolicyDocument): Promise<void> {
    if (this.compile) return;
    this.ensure();
    const newest = this.sql
      .exec<{ document: string }>("SELECT document FROM versions ORDER BY version DESC LIMIT 1")
      .toArray()[0];
    const current = newest ? (JSON.parse(newest.document) as ControlDocument).policy : undefined;
    if (hasRules(proposed) || hasRules(current)) this.compile = await loadRuleCompiler();
  }

  private get sql() {
    return this.ctx.storage.sql;
  }

  /**
   * The newest version, if the isolate does not hold it. The isolate names its seed by hash; only
   * when the store has never seen that hash does it ask for the seed itself (`send_seed`), and
   * the isolate asks again with it. A version goes out without its policy when the isolate holds
   * that policy already, so a poll costs the same at ten agents and at a hundred thousand.
   */
  sync(holding: Holding, seed?: Seed): SyncAnswer {
    this.load();
    if (!this.known(holding.seed)) {
      if (seed === undefined || seed.hash !== holding.seed) return { kind: "send_seed" };
      this.take(seed);
    }
    const latest = this.take(undefined);
    if (latest.version === holding.version) return { kind: "current" };
    const { policy, ...rest } = latest.document;
    // The policy of the version that took the seed in is the seed's, as long as no later version
    // changed it (`policyVersion` names the version that last did).
    const held =
      latest.policyVersion === holding.policyVersion
        ? "held"
        : this.seeds?.get(holding.seed) === latest.policyVersion
          ? "seed"
          : undefined;
    return { kind: "changed", version: { ...latest, document: rest, policy: held ?? policy } };
  }

  /** The newest version (after seeding, if the store is empty). */
  current(seed: Seed): Snapshot {
    return this.take(seed);
  }

  /** Version `version`, or null when there is none. */
  at(version: number): Snapshot | null {
    this.ensure();
    const row = this.sql
      .exec<VersionRow>("SELECT * FROM versions WHERE version = ?", version)
      .toArray()[0];
    return row ? snapshotOf(row) : null;
  }

  /** The newest `limit` versions, newest first, optionally only those before `before`. */
  history(limit: number, before?: number): HistoryEntry[] {
    this.ensure();
    const rows = this.sql
      .exec<VersionRow>(
        "SELECT version, policy_version, at, actor, action, changes FROM versions WHERE version < ? ORDER BY version DESC LIMIT ?",
        before ?? Number.MAX_SAFE_INTEGER,
        limit,
      )
      .toArray();
    return rows.map((row) => ({
      version: row.version,
      policyVersion: row.policy_version,
      at: row.at,
      actor: row.actor,
      action: row.action,
      changes: JSON.parse(row.changes) as Change[],
    }));
  }

  /** Replaces the policy, if `ifMatch` is the version that last changed it. */
  async putPolicy(
    seed: Seed,
    actor: string,
    ifMatch: number | null,
    policy: PolicyDocument,
  ): Promise<ChangeResult> {
    await this.ready(policy);
    const latest = this.take(seed);
    const stale = precondition(latest, ifMatch);
    if (stale) return stale;
    return this.commit(latest, actor, "policy.put", { ...latest.document, policy }, true);
  }

  /** Makes version `to`'s policy the current one again (a new version; nothing is erased). */
  async rollbackPolicy(
    seed: Seed,
    actor: string,
    ifMatch: number | null,
    to: number,
  ): Promise<ChangeResult> {
    await this.ready(this.at(to)?.document.policy);
    const latest = this.take(seed);
    const stale = precondition(latest, ifMatch);
    if (stale) return stale;
    const target = this.at(to);
    if (!target) return { ok: false, status: 404, error: `there is no version ${to}` };
    const document = { ...latest.document, policy: target.document.policy };
    return this.commit(latest, actor, `policy.rollback:${to}`, document, true);
  }

  /** Adds a backend or changes one. */
  async putBackend(seed: Seed, actor: string, entry: BackendEntry): Promise<ChangeResult> {
    await this.ready();
    const latest = this.take(seed);
    const others = latest.document.backends.filter((b) => b.id !== entry.id);
    const action =
      others.length === latest.document.backends.length ? "backend.add" : "backend.change";
    const document = { ...latest.document, backends: [...others, entry] };
    return this.commit(latest, actor, `${action}:${entry.id}`, document, false);
  }

  /** Removes a backend; refused while the policy grants it to anyone. */
  async removeBackend(seed: Seed, actor: string, id: string): Promise<ChangeResult> {
    await this.ready();
    const latest = this.take(seed);
    if (!latest.document.backends.some((b) => b.id === id)) {
      return { ok: false, status: 404, error: `there is no backend "${id}"` };
    }
    const holders = Object.entries(latest.document.policy)
      .filter(([, grants]) => typeof grants === "object" && grants !== null && id in grants)
      .map(([agent]) => agent);
    if (holders.length > 0) {
      return {
        ok: false,
        status: 409,
        error: `backend "${id}" is granted to ${holders.join(", ")}: change the policy first`,
      };
    }
    const document = {
      ...latest.document,
      backends: latest.document.backends.filter((b) => b.id !== id),
    };
    return this.commit(latest, actor, `backend.remove:${id}`, document, false);
  }

  /** Enables or disables an agent (a disabled agent's every token is refused). */
  async setAgent(
    seed: Seed,
    actor: string,
    agent: string,
    entry: AgentEntry,
  ): Promise<ChangeResult> {
    await this.ready();
    const latest = this.take(seed);
    const document = { ...latest.document, agents: { ...latest.document.agents, [agent]: entry } };
    const action = `${entry.enabled ? "agent.enable" : "agent.disable"}:${agent}`;
    return this.commit(latest, actor, action, document, false);
  }

  /**
   * Maps a person (a verified email, or a group) to an agent for OAuth sign-in, or removes the
   * mapping (`agent` null). Their OAuth tokens follow the mapping at once (`oauth/tokens.ts`).
   */
  async setPerson(
    seed: Seed,
    actor: string,
    person: { kind: "emails" | "groups"; key: string; agent: string | null },
  ): Promise<ChangeResult> {
    await this.ready();
    const latest = this.take(seed);
    const { people } = latest.document;
    const { [person.key]: _dropped, ...others } = people[person.kind];
    const entries = person.agent === null ? others : { ...others, [person.key]: person.agent };
    const document = { ...latest.document, people: { ...people, [person.kind]: entries } };
    const action = `${person.agent === null ? "person.remove" : "person.map"}:${person.key}`;
    return this.commit(latest, actor, action, document, false);
  }

  /** Registers an agent's OAuth client for the client credentials grant, or removes it (null). */
  async setClient(
    seed: Seed,
    actor: string,
    clientId: string,
    entry: AgentClient | null,
  ): Promise<ChangeResult> {
    await this.ready();
    const latest = this.take(seed);
    const { [clientId]: existing, ...others } = latest.document.clients;
    if (entry === null && existing === undefined) {
      return { ok: false, status: 404, error: `there is no client "${clientId}"` };
    }
    const clients = entry === null ? others : { ...others, [clientId]: entry };
    const action = `${entry === null ? "client.remove" : "client.add"}:${clientId}`;
    return this.commit(latest, actor, action, { ...latest.document, clients }, false);
  }

  /** Revokes one token by `jti` (kept until `until`), or every token of `agent` issued before `before`. */
  async revoke(
    seed: Seed,
    actor: string,
    revocation: { jti: string; until: number } | { agent: string; before: number },
  ): Promise<ChangeResult> {
    await this.ready();
    const latest = this.take(seed);
    const { revocations } = latest.document;
    const next =
      "jti" in revocation
        ? { ...revocations, tokens: { ...revocations.tokens, [revocation.jti]: revocation.until } }
        : {
            ...revocations,
            agents: { ...revocations.agents, [revocation.agent]: revocation.before },
          };
    const what = "jti" in revocation ? `jti:${revocation.jti}` : `agent:${revocation.agent}`;
    return this.commit(
      latest,
      actor,
      `revoke:${what}`,
      { ...latest.document, revocations: next },
      false,
    );
  }

  /** Validates `document` and keeps it as the next version. */
  private commit(
    latest: Snapshot,
    actor: string,
    action: string,
    proposed: ControlDocument,
    policyChanged: boolean,
  ): ChangeResult {
    const document = pruned(proposed, Math.floor(Date.now() / 1000));
    const count =
      Object.keys(document.revocations.tokens).length +
      Object.keys(document.revocations.agents).length;
    if (count > MAX_REVOCATIONS) {
      return { ok: false, status: 409, error: `at most ${MAX_REVOCATIONS} revocations are kept` };
    }
    const next = {
      version: latest.version + 1,
      policyVersion: policyChanged ? latest.version + 1 : latest.policyVersion,
      document,
    };
    // The same validation an isolate applies when it serves the version.
    const valid = readControl(next, {
      direct: true,
      ...(this.compile ? { compile: this.compile } : {}),
    });
    if (!valid.ok) return { ok: false, status: 400, error: valid.error };
    const changes = diffDocuments(latest.document, document);
    // A change that changes nothing (enabling an enabled agent) makes no version.
    if (changes.length === 0) return { ok: true, snapshot: latest, changes };
    const snapshot = this.write(next, actor, action, changes);
    return { ok: true, snapshot, changes };
  }

  private write(
    next: Omit<Snapshot, "at">,
    actor: string,
    action: string,
    changes: Change[],
  ): Snapshot {
    const at = new Date().toISOString();
    this.sql.exec(
      "INSERT INTO versions (version, policy_version, at, actor, action, changes, document) VALUES (?, ?, ?, ?, ?, ?, ?)",
      next.version,
      next.policyVersion,
      at,
      actor,
      action,
      JSON.stringify(changes),
      JSON.stringify(next.document),
    );
    this.latest = { ...next, at };
    return this.latest;
  }

  /** Reads the newest version and the seeds taken in, once per instance. */
  private load(): void {
    this.ensure();
    if (this.latest === undefined) {
      const row = this.sql
        .exec<VersionRow>("SELECT * FROM versions ORDER BY version DESC LIMIT 1")
        .toArray()[0];
      if (row) this.latest = snapshotOf(row);
    }
    if (this.seeds === undefined) {
      const rows = this.sql
        .exec<{ hash: string; version: number }>("SELECT * FROM seeds")
        .toArray();
      this.seeds = new Map(rows.map((row) => [row.hash, row.version]));
    }
  }

  /** Whether the store has taken in the seed with this hash (and so holds a version). */
  private known(hash: string): boolean {
    return this.latest !== undefined && this.seeds?.has(hash) === true;
  }

  /**
   * The newest version, after taking in `seed` if the store has never seen it; `undefined` only
   * once the caller has made sure the store holds a version (`known`).
   */
  private take(seed: Seed | undefined): Snapshot {
    this.load();
    if (seed === undefined || this.known(seed.hash)) {
      if (this.latest) return this.latest;
      throw new Error("the control store holds no version and was given no seed");
    }

    const before = this.latest;
    const document: ControlDocument = {
      agents: {},
      people: { emails: {}, groups: {} },
      clients: {},
      revocations: { tokens: {}, agents: {} },
      ...before?.document,
      policy: seed.policy,
      backends: seed.backends,
    };
    const version = (before?.version ?? 0) + 1;
    const snapshot = this.write(
      { version, policyVersion: version, document },
      before ? "deploy" : "seed",
      before ? "deploy" : "seed",
      diffDocuments(before?.document, document),
    );
    this.sql.exec("INSERT OR IGNORE INTO seeds (hash, version) VALUES (?, ?)", seed.hash, version);
    this.seeds?.set(seed.hash, version);
    return snapshot;
  }

  private ensure(): void {
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS versions (version INTEGER PRIMARY KEY, policy_version INTEGER NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, changes TEXT NOT NULL, document TEXT NOT NULL);" +
        "CREATE TABLE IF NOT EXISTS seeds (hash TEXT PRIMARY KEY, version INTEGER NOT NULL);",
    );
  }
}

/** 428 without `If-Match`, 412 when it names a version other than the policy's. */
function precondition(latest: Snapshot, ifMatch: number | null): ChangeResult | undefined {
  if (ifMatch === null) {
    return {
      ok: false,
      status: 428,
      error: `If-Match is required: send the policy's version (now "${latest.policyVersion}")`,
    };
  }
  if (ifMatch !== latest.policyVersion) {
    return {
      ok: false,
      status: 412,
      error: `the policy is at version "${latest.policyVersion}", not "${ifMatch}": read it again`,
    };
  }
  return undefined;
}

function snapshotOf(row: VersionRow): Snapshot {
  return {
    version: row.version,
    policyVersion: row.policy_version,
    at: row.at,
    document: JSON.parse(row.document) as ControlDocument,
  };
}
