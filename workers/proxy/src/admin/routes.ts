/**
 * The admin API under `/admin/*` (docs/run-time-control.md): the policy (read, replace with a dry
 * run first if wanted, history, roll back), the backend registry (list with health, add after a
 * health probe, remove), agents (effective names, last seen, disable, enable) and revocations.
 * Every request needs a token with the `admin` scope; every change becomes a new version in the
 * ControlStore (who, when, what changed) and an audit record, and this isolate serves it at once
 * (the others within two seconds, `state/control-cache.ts`).
 */
import { Hono } from "hono";
import { z } from "zod";
import { listAll, withBackend } from "../backend-side/backends.ts";
import { ClientJwks, readControl } from "../control/document.ts";
import { originAllowed } from "../core/origin.ts";
import { hasRules, loadRuleCompiler, PolicyDocument, policyFrom } from "../core/policy.ts";
import { describe, fail } from "../errors.ts";
import { newClient } from "../oauth/client-credentials.ts";
import { authenticate, baseFor, type Gateway, gatewayFor } from "../pipeline.ts";
import { beginRecord, lastSeen, writeRecord } from "../state/audit-store.ts";
import type { ChangeResult } from "../state/control-store.ts";
import { CONTROL_STORE_NAME, DEFAULT_REVOCATION_DAYS } from "../state/control-store.ts";
import { agentsChanged, effectiveFor, effectOf } from "./effects.ts";

/** The scope every admin request needs. */
export const ADMIN_SCOPE = "admin";

/** How long a health probe of a backend may take. */
const PROBE_TIMEOUT_MS = 3_000;

type Admin = { Bindings: Env; Variables: { gateway: Gateway; actor: string } };

export const admin = new Hono<Admin>();

admin.use("*", async (c, next) => {
  const gateway = await gatewayFor(c.env, (work) => c.executionCtx.waitUntil(work));
  // As on /mcp: a page from elsewhere may not drive the admin API with a token it holds.
  const url = new URL(c.req.url);
  if (!originAllowed(c.req.header("origin") ?? null, url, gateway.config.allowedOrigins)) {
    fail({ kind: "origin_refused" });
  }
  const identity = await authenticate(c.req.raw, gateway);
  if (!identity.scopes.has(ADMIN_SCOPE)) {
    fail({ kind: "insufficient_scope", scope: ADMIN_SCOPE, id: null });
  }
  c.set("gateway", gateway);
  c.set("actor", identity.agent);
  await next();
});

const PolicyBody = z.object({ policy: z.record(z.string(), z.unknown()) });
const PolicyOnly = z.object({ policy: PolicyDocument });
const RollbackBody = z.object({ to: z.union([z.string(), z.number()]) });
const BackendBody = z.object({
  id: z.string(),
  url: z.string(),
  identity: z.enum(["assertion", "none"]).default("none"),
});
const NoteBody = z.object({ note: z.string().max(500).optional() }).default({});
const PersonKey = z.union([
  z.object({ email: z.string().min(3).max(320) }).strict(),
  z.object({ group: z.string().min(1).max(200) }).strict(),
]);
const PersonBody = z.union([
  z.object({ email: z.string().min(3).max(320), agent: z.string().min(1).max(200) }).strict(),
  z.object({ group: z.string().min(1).max(200), agent: z.string().min(1).max(200) }).strict(),
]);
const ClientBody = z
  .object({
    agent: z.string().min(1).max(200),
    jwks: ClientJwks.optional(),
  })
  .strict();
const RevocationBody = z.union([
  z.object({ jti: z.string().min(1).max(200), expires_at: z.number().int().positive().optional() }),
  z.object({ agent: z.string().min(1).max(200), before: z.number().int().positive().optional() }),
]);

admin.get("/policy", (c) => {
  const { control } = c.get("gateway");
  return c.json({ version: String(control.policyVersion), policy: control.document.policy });
});

admin.put("/policy", async (c) => {
  const gateway = c.get("gateway");
  const { policy: raw } = await bodyOf(c.req.raw, PolicyBody);
  const compile = hasRules(raw) ? await loadRuleCompiler() : undefined;
  const proposed = policyFrom(raw, [...gateway.control.backends.keys()], "policy", compile);
  if (!proposed.ok) fail({ kind: "admin_refused", status: 400, message: proposed.error });
  const { policy } = PolicyOnly.parse({ policy: raw });
  if (c.req.query("dry_run") === "1") {
    const agents = agentsChanged(
      gateway.control.document.policy,
      PolicyOnly.parse({ policy: raw }).policy,
    );
    const signal = c.req.raw.signal;
    const defer = (work: Promise<unknown>) => c.executionCtx.waitUntil(work);
    const changes = Object.fromEntries(
      await Promise.all(
        agents.map(async (agent) => {
          const [before, after] = await Promise.all([
            effectiveFor(gateway, c.env, gateway.control.policy, agent, signal, defer),
            effectiveFor(gateway, c.env, proposed.value, agent, signal, defer),
          ]);
          return [agent, effectOf(before, after)] as const;
        }),
      ),
    );
    return c.json({ version: String(gateway.control.policyVersion), changes });
  }
  const result = await change(c.env, c.get("actor"), "policy.put", (store, seed) =>
    store.putPolicy(seed, c.get("actor"), ifMatch(c.req.header("if-match")), policy),
  );
  return c.json({ version: String(result.snapshot.policyVersion), changes: result.changes });
});

admin.get("/policy/history", async (c) => {
  const limit = Math.min(Math.max(Number(c.req.query("limit") ?? 50) || 50, 1), 500);
  const before = c.req.query("before");
  const entries = await storeOf(c.env).history(
    limit,
    before === undefined ? undefined : Number(before),
  );
  return c.json({
    versions: entries.map((e) => ({
      ...e,
      version: String(e.version),
      policyVersion: String(e.policyVersion),
    })),
  });
});

admin.get("/policy/versions/:version", async (c) => {
  const snapshot = await storeOf(c.env).at(Number(c.req.param("version")));
  if (!snapshot) {
    fail({
      kind: "admin_refused",
      status: 404,
      message: `there is no version ${c.req.param("version")}`,
    });
  }
  return c.json({
    version: String(snapshot.version),
    at: snapshot.at,
    policy: snapshot.document.policy,
  });
});

admin.post("/policy/rollback", async (c) => {
  const { to } = await bodyOf(c.req.raw, RollbackBody);
  const actor = c.get("actor");
  const result = await change(c.env, actor, "policy.rollback", (store, seed) =>
    store.rollbackPolicy(seed, actor, ifMatch(c.req.header("if-match")), Number(to)),
  );
  return c.json({ version: String(result.snapshot.policyVersion), changes: result.changes });
});

admin.get("/backends", async (c) => {
  const gateway = c.get("gateway");
  const backends = await Promise.all(
    [...gateway.control.backends.values()].map(async (backend) => ({
      id: backend.id,
      url: backend.route === "binding" ? null : backend.url.href,
      route: backend.route,
      identity: backend.identity,
      health: await probe(gateway, c.env, backend.id, c.get("actor")),
    })),
  );
  return c.json({ version: String(gateway.control.version), backends });
});

admin.post("/backends", async (c) => {
  const gateway = c.get("gateway");
  const entry = await bodyOf(c.req.raw, BackendBody);
  const actor = c.get("actor");
  // The entry is checked by the same rules as any version before anything is asked of it.
  const candidate = readControl(
    {
      version: 0,
      policyVersion: 0,
      document: {
        policy: {},
        backends: [{ ...entry, route: "network" }],
        agents: {},
        people: { emails: {}, groups: {} },
        clients: {},
        revocations: { tokens: {}, agents: {} },
      },
    },
    { direct: gateway.config.direct },
  );
  if (!candidate.ok) fail({ kind: "admin_refused", status: 400, message: candidate.error });
  if (gateway.control.backends.get(entry.id)?.route === "binding") {
    fail({
      kind: "admin_refused",
      status: 409,
      message: `"${entry.id}" is reached over a service binding and cannot be replaced`,
    });
  }
  const spec = candidate.value.backends.get(entry.id);
  if (spec) {
    const trial = {
      ...gateway,
      config: { ...gateway.config, backends: new Map([[spec.id, spec]]) },
    };
    const health = await probe(trial, c.env, spec.id, actor);
    if (!health.ok) {
      fail({
        kind: "admin_refused",
        status: 422,
        message: `${entry.id} did not answer a health probe: ${health.error}`,
      });
    }
  }
  const result = await change(c.env, actor, "backend.put", (store, seed) =>
    store.putBackend(seed, actor, { ...entry, route: "network" }),
  );
  return c.json({ version: String(result.snapshot.version), changes: result.changes }, 201);
});

admin.delete("/backends/:id", async (c) => {
  const actor = c.get("actor");
  const id = c.req.param("id");
  const result = await change(c.env, actor, "backend.remove", (store, seed) =>
    store.removeBackend(seed, actor, id),
  );
  return c.json({ version: String(result.snapshot.version), changes: result.changes });
});

admin.get("/agents", async (c) => {
  const gateway = c.get("gateway");
  const { control } = gateway;
  const seen = await lastSeen(c.env.AUDIT_DB).catch(() => new Map<string, string>());
  const ids = [...new Set([...control.policy.keys(), ...control.agents.keys()])].sort();
  const signal = c.req.raw.signal;
  const defer = (work: Promise<unknown>) => c.executionCtx.waitUntil(work);
  const agents = await Promise.all(
    ids.map(async (id) => ({
      id,
      enabled: control.agents.get(id)?.enabled ?? true,
      note: control.agents.get(id)?.note ?? "",
      servers: [...(control.policy.get(id)?.keys() ?? [])].sort(),
      effective: await effectiveFor(gateway, c.env, control.policy, id, signal, defer),
      last_seen: seen.get(id) ?? null,
    })),
  );
  return c.json({ version: String(control.version), agents });
});

for (const [path, enabled] of [
  ["/agents/:id/disable", false],
  ["/agents/:id/enable", true],
] as const) {
  admin.post(path, async (c) => {
    const actor = c.get("actor");
    const id = c.req.param("id");
    const { note } = await bodyOf(c.req.raw, NoteBody, true);
    const result = await change(
      c.env,
      actor,
      enabled ? "agent.enable" : "agent.disable",
      (store, seed) => store.setAgent(seed, actor, id, { enabled, note: note ?? "" }),
    );
    return c.json({ version: String(result.snapshot.version), changes: result.changes });
  });
}

/** Who may sign in with OAuth, as which agent (docs/clients.md, "OAuth"). */
admin.get("/people", (c) => {
  const { control } = c.get("gateway");
  return c.json({ version: String(control.version), people: control.people });
});

admin.put("/people", async (c) => {
  const actor = c.get("actor");
  const body = await bodyOf(c.req.raw, PersonBody);
  const [kind, key] =
    "email" in body
      ? (["emails", body.email.toLowerCase()] as const)
      : (["groups", body.group] as const);
  const result = await change(c.env, actor, "person.map", (store, seed) =>
    store.setPerson(seed, actor, { kind, key, agent: body.agent }),
  );
  return c.json({ version: String(result.snapshot.version), changes: result.changes });
});

admin.delete("/people", async (c) => {
  const actor = c.get("actor");
  const body = await bodyOf(c.req.raw, PersonKey);
  const [kind, key] =
    "email" in body
      ? (["emails", body.email.toLowerCase()] as const)
      : (["groups", body.group] as const);
  if (!(key in c.get("gateway").control.people[kind])) {
    fail({ kind: "admin_refused", status: 404, message: `${key} is not mapped` });
  }
  const result = await change(c.env, actor, "person.remove", (store, seed) =>
    store.setPerson(seed, actor, { kind, key, agent: null }),
  );
  return c.json({ version: String(result.snapshot.version), changes: result.changes });
});

/** Agents registered for the OAuth client credentials grant (docs/clients.md, "OAuth"). */
admin.get("/oauth-clients", (c) => {
  const { control } = c.get("gateway");
  const clients = [...control.clients].map(([id, entry]) => ({
    client_id: id,
    agent: entry.agent,
    auth: entry.jwks ? "private_key_jwt" : "client_secret",
  }));
  return c.json({ version: String(control.version), clients });
});

admin.post("/oauth-clients", async (c) => {
  const actor = c.get("actor");
  const body = await bodyOf(c.req.raw, ClientBody);
  const made = await newClient(body.agent, body.jwks);
  const result = await change(c.env, actor, "client.add", (store, seed) =>
    store.setClient(seed, actor, made.id, made.entry),
  );
  // The secret is shown this once; the store keeps only its SHA-256.
  return c.json(
    {
      version: String(result.snapshot.version),
      client_id: made.id,
      ...(made.secret === undefined ? {} : { client_secret: made.secret }),
      agent: body.agent,
    },
    201,
  );
});

admin.delete("/oauth-clients/:id", async (c) => {
  const actor = c.get("actor");
  const id = c.req.param("id");
  const result = await change(c.env, actor, "client.remove", (store, seed) =>
    store.setClient(seed, actor, id, null),
  );
  return c.json({ version: String(result.snapshot.version), changes: result.changes });
});

admin.get("/revocations", (c) => {
  const { control } = c.get("gateway");
  return c.json({
    version: String(control.version),
    tokens: Object.fromEntries(control.revokedTokens),
    agents: Object.fromEntries(control.revokedBefore),
  });
});

admin.post("/revocations", async (c) => {
  const actor = c.get("actor");
  const body = await bodyOf(c.req.raw, RevocationBody);
  const now = Math.floor(Date.now() / 1000);
  const revocation =
    "jti" in body
      ? { jti: body.jti, until: body.expires_at ?? now + DEFAULT_REVOCATION_DAYS * 86_400 }
      : { agent: body.agent, before: body.before ?? now + 1 };
  const result = await change(c.env, actor, "revoke", (store, seed) =>
    store.revoke(seed, actor, revocation),
  );
  return c.json({ version: String(result.snapshot.version), changes: result.changes }, 201);
});

function storeOf(env: Env) {
  return env.CONTROL.get(env.CONTROL.idFromName(CONTROL_STORE_NAME));
}

/**
 * Makes one change in the store and leaves its audit record; refused changes are answered with
 * the store's reason. This isolate takes the new version before it answers.
 */
async function change(
  env: Env,
  actor: string,
  action: string,
  make: (
    store: ReturnType<typeof storeOf>,
    seed: Awaited<ReturnType<typeof baseFor>>["seed"],
  ) => Promise<ChangeResult> | ChangeResult,
) {
  const base = await baseFor(env);
  const result = await make(storeOf(env), base.seed);
  const record = beginRecord(actor, crypto.randomUUID(), 0);
  record.method = "admin";
  record.tool = action;
  record.status = result.ok ? 200 : result.status;
  record.outcome = result.ok ? "ok" : `http_${result.status}`;
  await writeRecord(env.AUDIT_DB, record);
  if (!result.ok)
    return fail({ kind: "admin_refused", status: result.status, message: result.error });
  await base.cache.refresh();
  return result;
}

/** `If-Match: "12"` (or `12`, or `W/"12"`) as a version number; null when absent. */
function ifMatch(header: string | undefined): number | null {
  if (header === undefined) return null;
  const value = header
    .trim()
    .replace(/^W\//, "")
    .replace(/^"(.*)"$/, "$1");
  const version = Number(value);
  return Number.isSafeInteger(version) ? version : -1;
}

/** The request's JSON body checked against `schema`; 400 naming the place when it does not fit. */
async function bodyOf<S extends z.ZodType>(
  request: Request,
  schema: S,
  optional = false,
): Promise<z.infer<S>> {
  const text = await request.text();
  let raw: unknown;
  try {
    raw = text === "" && optional ? undefined : JSON.parse(text);
  } catch (e) {
    return fail({
      kind: "admin_refused",
      status: 400,
      message: `the body is not JSON: ${(e as Error).message}`,
    });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path.join(".") || "(root)";
    return fail({ kind: "admin_refused", status: 400, message: `${at}: ${issue?.message}` });
  }
  return parsed.data;
}

/** Whether `server` answers `tools/list` now, and how long it took. */
async function probe(
  gateway: Gateway,
  env: Env,
  server: string,
  actor: string,
): Promise<{ ok: true; tools: number; ms: number } | { ok: false; error: string; ms: number }> {
  const backend = gateway.config.backends.get(server);
  const began = performance.now();
  const ms = () => Math.round(performance.now() - began);
  if (!backend) return { ok: false, error: "not configured", ms: 0 };
  try {
    const caller = { agent: actor, signer: gateway.config.signer, bindings: env };
    const tools = await withBackend(backend, caller, { timeoutMs: PROBE_TIMEOUT_MS }, (ask) =>
      listAll(ask, "tools/list", "tools"),
    );
    return { ok: true, tools: tools.length, ms: ms() };
  } catch (e) {
    return { ok: false, error: describe(e), ms: ms() };
  }
}
