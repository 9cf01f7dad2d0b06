/**
 * The gateway's run-time state as one document, and what an isolate serves from it.
 *
 * The ControlStore Durable Object (`state/control-store.ts`) keeps every version of this document;
 * isolates serve from a copy (`state/control-cache.ts`). A version holds the policy, the backend
 * registry, agent records and revocations together, so an isolate that takes a version takes all
 * of it: never a new policy over an old backend list.
 *
 * Plain data in, tagged result out: the store validates a change with `readControl` before it
 * keeps it, and an isolate builds what it serves with the same function.
 */
import { z } from "zod";
import type { BackendSpec } from "../core/config.ts";
import type { ParseResult } from "../core/documents.ts";
import { SERVER_ID } from "../core/names.ts";
import {
  type CompileRule,
  grantsOnly,
  indexPolicy,
  type Policy,
  PolicyDocument,
  type ReadPolicy,
} from "../core/policy.ts";

/** A backend in the registry. mcp1 is reached over its service binding, the rest over the network. */
export const BackendEntry = z.object({
  id: z.string().regex(SERVER_ID, `server ids match ${SERVER_ID.source}`),
  url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
  route: z.enum(["binding", "network"]).default("network"),
  // Versions stored before the proxy signed its assertion over mcp1's service binding too say
  // "binding" for mcp1; they are read as what the proxy now does for it.
  identity: z
    .enum(["binding", "assertion", "none"])
    .default("none")
    .transform((identity) => (identity === "binding" ? "assertion" : identity)),
});
export type BackendEntry = z.infer<typeof BackendEntry>;

/** What an operator knows of an agent: whether it may connect at all, and why not. */
export const AgentEntry = z.object({
  enabled: z.boolean(),
  note: z.string().max(500).default(""),
});
export type AgentEntry = z.infer<typeof AgentEntry>;

/**
 * Who may sign in with OAuth, as which agent: a person's verified email, or a group their ID token
 * names, maps to an agent of the policy (`oauth/people.ts` decides). Emails are kept lower-case.
 */
export const PeopleEntry = z
  .object({
    emails: z
      .record(
        z
          .string()
          .min(3)
          .max(320)
          .regex(/^[^A-Z\s@]+@[^A-Z\s@]+$/, "a lower-case email address"),
        z.string().min(1).max(200),
      )
      .default({}),
    groups: z.record(z.string().min(1).max(200), z.string().min(1).max(200)).default({}),
  })
  .default({ emails: {}, groups: {} });
export type PeopleEntry = z.infer<typeof PeopleEntry>;

/** The public keys a client's `private_key_jwt` assertions are checked against: at most five. */
export const ClientJwks = z.object({
  keys: z
    .array(z.record(z.string(), z.union([z.string(), z.array(z.string())])))
    .min(1)
    .max(5),
});

/**
 * An agent the operator registered as an OAuth client for the client credentials grant: it
 * authenticates with a secret (kept only as its SHA-256) or with `private_key_jwt` against its
 * public keys, and its tokens act as `agent` (`oauth/client-credentials.ts`).
 */
export const AgentClient = z
  .object({
    agent: z.string().min(1).max(200),
    secret_sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    jwks: ClientJwks.optional(),
  })
  .refine((c) => (c.secret_sha256 === undefined) !== (c.jwks === undefined), {
    message: "a client has a secret or public keys, exactly one",
  });
export type AgentClient = z.infer<typeof AgentClient>;

/** The most registered clients a document keeps. */
export const MAX_CLIENTS = 1_000;

/** The most people mappings a document keeps (emails and groups together). */
export const MAX_PEOPLE = 5_000;

/** The most revocations a document keeps; expired ones leave at every change. */
export const MAX_REVOCATIONS = 10_000;

/** The document but its policy: what a version sends an isolate that holds the policy already. */
export const ControlRest = z.object({
  backends: z.array(BackendEntry).max(64),
  agents: z.record(z.string().min(1).max(200), AgentEntry).default({}),
  people: PeopleEntry,
  clients: z.record(z.string().regex(/^agent-[0-9a-f]{32}$/), AgentClient).default({}),
  revocations: z
    .object({
      /** A token's `jti` → the Unix second after which the record may go (the token is dead). */
      tokens: z.record(z.string().min(1).max(200), z.number().int()).default({}),
      /** An agent → every token of it issued before this Unix second is refused. */
      agents: z.record(z.string().min(1).max(200), z.number().int()).default({}),
    })
    .default({ tokens: {}, agents: {} }),
});
export type ControlRest = z.infer<typeof ControlRest>;

export const ControlDocument = z.object({
  /** `{ agent: { server: "*" | [tool, ...] } }`, as in policy.json (docs/design.md, "Policy"). */
  policy: PolicyDocument,
  ...ControlRest.shape,
});
export type ControlDocument = z.infer<typeof ControlDocument>;

/** One version of the document, as the store hands it out. */
export interface Snapshot {
  /** Grows by one with every change. */
  version: number;
  /** The version that last changed the policy: what `If-Match` on the policy compares with. */
  policyVersion: number;
  at: string;
  document: ControlDocument;
}

/** What a request is served from: one version, validated and indexed. */
export interface Control {
  version: number;
  policyVersion: number;
  /** The version's document as stored: what the admin API shows. */
  document: ControlDocument;
  policy: Policy;
  backends: ReadonlyMap<string, BackendSpec>;
  agents: ReadonlyMap<string, AgentEntry>;
  /** Who may sign in with OAuth, as which agent. */
  people: PeopleEntry;
  /** Agents registered for the client credentials grant, by client id. */
  clients: ReadonlyMap<string, AgentClient>;
  revokedTokens: ReadonlyMap<string, number>;
  revokedBefore: ReadonlyMap<string, number>;
}

/** How the gateway's static switches shape each backend (`DIRECT`, from the environment). */
export interface BackendOptions {
  direct: boolean;
  /** Compiles the policy's rules; needed only when it has some (`loadRuleCompiler`). */
  compile?: CompileRule;
}

/**
 * Validates a document and indexes it, or says where it is wrong (`document.policy.red.mcp9`).
 * With `held`, the policy read before (POLICY, or the version the isolate serves) that the
 * document's policy is known to be: only the rest is validated, and the held index is checked
 * against the document's backends, so a policy is validated once per change, not once per version.
 */
export function readControl(
  snapshot: Pick<Snapshot, "version" | "policyVersion"> & { document: unknown },
  options: BackendOptions,
  held?: ReadPolicy,
): ParseResult<Control> {
  const checked = documentOf(snapshot.document, held);
  if (!checked.ok) return checked;
  const document = checked.value;
  const backends = new Map<string, BackendSpec>();
  for (const entry of [...document.backends].sort((a, b) => a.id.localeCompare(b.id))) {
    if (backends.has(entry.id))
      return { ok: false, error: `backends: "${entry.id}" is listed twice` };
    backends.set(entry.id, {
      id: entry.id,
      url: new URL(entry.url),
      route: entry.route,
      identity: entry.identity,
      direct: options.direct,
    });
  }
  const servers = [...backends.keys()];
  const policy = held
    ? grantsOnly(held.policy, servers, "policy")
    : indexPolicy(document.policy, servers, "policy", options.compile);
  if (!policy.ok) return policy;
  const mapped =
    Object.keys(document.people.emails).length + Object.keys(document.people.groups).length;
  if (mapped > MAX_PEOPLE) return { ok: false, error: `people: at most ${MAX_PEOPLE} mappings` };
  if (Object.keys(document.clients).length > MAX_CLIENTS) {
    return { ok: false, error: `clients: at most ${MAX_CLIENTS}` };
  }
  return {
    ok: true,
    value: {
      version: snapshot.version,
      policyVersion: snapshot.policyVersion,
      document,
      policy: policy.value,
      backends,
      agents: new Map(Object.entries(document.agents)),
      people: document.people,
      clients: new Map(Object.entries(document.clients)),
      revokedTokens: new Map(Object.entries(document.revocations.tokens)),
      revokedBefore: new Map(Object.entries(document.revocations.agents)),
    },
  };
}

/** The document validated: whole, or all but the policy when it is `held`'s. */
function documentOf(raw: unknown, held: ReadPolicy | undefined): ParseResult<ControlDocument> {
  if (held) {
    const parsed = ControlRest.safeParse(raw);
    if (!parsed.success) return issueOf(parsed.error);
    return { ok: true, value: { policy: held.document, ...parsed.data } };
  }
  const parsed = ControlDocument.safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : issueOf(parsed.error);
}

function issueOf(error: z.ZodError): { ok: false; error: string } {
  const issue = error.issues[0];
  return { ok: false, error: `${issue?.path.join(".") || "(root)"}: ${issue?.message}` };
}

/** What a token needs for the revocation check: who, its `jti`, when it was issued. */
export interface TokenFacts {
  agent: string;
  tokenId: string | undefined;
  issuedAt: number | undefined;
}

/**
 * Why `control` refuses a verified token, or null when it does not: a disabled agent, a revoked
 * `jti`, or a token issued before its agent's revocation time (one without `iat` counts as
 * issued before: the check fails closed).
 */
export function refusalOf(control: Control, token: TokenFacts): string | null {
  if (control.agents.get(token.agent)?.enabled === false) return "agent disabled";
  if (token.tokenId !== undefined && control.revokedTokens.has(token.tokenId)) {
    return "token revoked";
  }
  const before = control.revokedBefore.get(token.agent);
  if (before !== undefined && (token.issuedAt === undefined || token.issuedAt < before)) {
    return "token revoked (issued before the agent's revocation)";
  }
  return null;
}

/** One difference between two versions: where, and the value before and after (absent: undefined). */
export interface Change {
  path: string;
  before?: ChangeValue;
  after?: ChangeValue;
}

/** What a change's sides hold: a grant, a backend, an agent record, or a revocation's time. */
export type ChangeValue =
  | PolicyDocument[string][string]
  | BackendEntry
  | AgentEntry
  | AgentClient
  | number
  | string;

/**
 * The differences between two documents, down to each agent's grant of each server, each backend,
 * each agent record and each revocation: what a version's history entry shows.
 */
export function diffDocuments(
  before: ControlDocument | undefined,
  after: ControlDocument,
): Change[] {
  const changes: Change[] = [];
  const byId = (doc: ControlDocument | undefined) =>
    Object.fromEntries((doc?.backends ?? []).map((b) => [b.id, b]));
  diffObjects("policy", before?.policy ?? {}, after.policy, 2, changes);
  diffObjects("backends", byId(before), byId(after), 1, changes);
  diffObjects("agents", before?.agents ?? {}, after.agents, 1, changes);
  diffObjects("people", before?.people ?? {}, after.people, 2, changes);
  diffObjects("clients", before?.clients ?? {}, after.clients, 1, changes);
  diffObjects("revocations", before?.revocations ?? {}, after.revocations, 2, changes);
  return changes;
}

function diffObjects(
  path: string,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  depth: number,
  changes: Change[],
): void {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const key of keys) {
    const a = before[key];
    const b = after[key];
    const where = `${path}.${key}`;
    if (depth > 1 && isPlainObject(a) && isPlainObject(b)) {
      diffObjects(where, a, b, depth - 1, changes);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      changes.push({
        path: where,
        ...(a === undefined ? {} : { before: a as ChangeValue }),
        ...(b === undefined ? {} : { after: b as ChangeValue }),
      });
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The document without revocations that can no longer matter (the token has expired anyway). */
export function pruned(document: ControlDocument, nowSeconds: number): ControlDocument {
  const tokens = Object.entries(document.revocations.tokens).filter(
    ([, until]) => until > nowSeconds,
  );
  return {
    ...document,
    revocations: { ...document.revocations, tokens: Object.fromEntries(tokens) },
  };
}
