/**
 * The MCPCP gateway Worker: its routes, and the Durable Object classes workerd binds. The request
 * path of `/mcp` is `pipeline.ts`; what each layer owns is in this Worker's README.
 */
import { Hono } from "hono";
import { ASSETS_PATH, assetResponse, PAGE_PATH, pageResponse } from "./admin/page.ts";
import { ADMIN_SCOPE, admin } from "./admin/routes.ts";
import { SCOPES } from "./core/auth.ts";
import { hostAllowed } from "./core/host.ts";
import { fail, GatewayError, httpResponse, RESOURCE_METADATA_PATH } from "./errors.ts";
import { oauthRoutes } from "./oauth/routes.ts";
import { authenticate, baseFor, gatewayFor, serveMcp } from "./pipeline.ts";
import { AUDIT_SCOPE, AuditQuery, queryRecords } from "./state/audit-store.ts";
import type { ControlHealth } from "./state/control-cache.ts";

// The entry module's named exports are what workerd binds: Durable Object classes only.
export { AgentGate } from "./state/agent-gate.ts";
export { ControlStore } from "./state/control-store.ts";
export { StreamLog } from "./state/stream-log.ts";
export { UpstreamSessions } from "./state/upstream-sessions.ts";

const app = new Hono<{ Bindings: Env }>();

// Says which version of the run-time state this isolate serves, and whether the store answers.
app.get("/healthz", async (c) => {
  let control: ControlHealth;
  try {
    // Serving a request checks a stale copy (in the background once the store has failed).
    await gatewayFor(c.env, (work) => c.executionCtx.waitUntil(work));
    control = (await baseFor(c.env)).cache.health();
  } catch (e) {
    const error = e instanceof GatewayError ? e.failure.kind : "internal";
    return c.json({ status: "unavailable", server: "proxy", error, control: null }, 503);
  }
  const status = control.unreachable ? "degraded" : "ok";
  return c.json({ status, server: "proxy", control });
});

// Before anything else, the token included: the request must name this gateway. A page whose
// name an attacker points at 127.0.0.1 reaches a local gateway with its own Host (core/host.ts).
app.use("*", async (c, next) => {
  // workerd builds the URL from the Host header; a request made inside the runtime has only a URL.
  const host = c.req.header("host") ?? new URL(c.req.url).host;
  // A check of the run-time state this starts must outlive a route that answers at once (the
  // admin page, /.well-known/*): a promise of a request that has ended never settles in workerd.
  const gateway = await gatewayFor(c.env, (work) => c.executionCtx.waitUntil(work));
  if (!hostAllowed(host, gateway.config.allowedHosts)) {
    fail({ kind: "host_refused", host });
  }
  await next();
});

/**
 * RFC 9728 protected resource metadata: what a resource is and which scopes it knows, and, when
 * OAuth sign-in is on, the authorization server that issues tokens for it (this origin).
 */
function resourceMetadata(resource: string, name: string, oauth: boolean) {
  return {
    resource,
    resource_name: name,
    ...(oauth ? { authorization_servers: [new URL(resource).origin] } : {}),
    bearer_methods_supported: ["header"],
    scopes_supported: [SCOPES.list, SCOPES.call],
  };
}

app.on("GET", [RESOURCE_METADATA_PATH, `${RESOURCE_METADATA_PATH}/mcp`], async (c) => {
  const oauth = (await gatewayFor(c.env)).config.oauth !== null;
  return c.json(resourceMetadata(`${new URL(c.req.url).origin}/mcp`, "MCPCP gateway", oauth));
});

/** Each door's own metadata (RFC 9728 §3.1: the resource's path after the well-known prefix). */
app.get(`${RESOURCE_METADATA_PATH}/servers/:server/mcp`, async (c) => {
  const server = c.req.param("server");
  const { config } = await gatewayFor(c.env);
  if (!config.backends.has(server)) {
    fail({ kind: "no_route", method: c.req.method, path: c.req.path });
  }
  const resource = `${new URL(c.req.url).origin}/servers/${server}/mcp`;
  return c.json(
    resourceMetadata(resource, `MCPCP gateway: server ${server}`, config.oauth !== null),
  );
});

/** The proxy's public assertion keys: what mcp2 and mcp3 verify the proxy's assertions with. */
app.get("/.well-known/jwks.json", async (c) => c.json((await gatewayFor(c.env)).config.publicJwks));

// OAuth sign-in for people's MCP clients, when OIDC_ISSUER is set (404 otherwise).
app.route("/", oauthRoutes);

app.all("/mcp", (c) => serveMcp(c.req.raw, c.env, c.executionCtx));

/** One backend under its own names, through the same token, policy, limits and audit. */
app.all("/servers/:server/mcp", (c) =>
  serveMcp(c.req.raw, c.env, c.executionCtx, { kind: "door", server: c.req.param("server") }),
);

/**
 * The audit log, newest first, filtered by agent, tool, server and time. Needs `audit_read`, or
 * `admin`, which may change everything the log records (the admin page shows it).
 */
app.get("/admin/audit", async (c) => {
  const identity = await authenticate(c.req.raw, await gatewayFor(c.env));
  if (!identity.scopes.has(AUDIT_SCOPE) && !identity.scopes.has(ADMIN_SCOPE)) {
    fail({ kind: "insufficient_scope", scope: AUDIT_SCOPE, id: null });
  }
  const query = AuditQuery.safeParse(c.req.query());
  if (!query.success) {
    const issue = query.error.issues[0];
    fail({ kind: "invalid_query", message: `${issue?.path.join(".")}: ${issue?.message}` });
  }
  return c.json({ records: await queryRecords(c.env.AUDIT_DB, query.data) });
});

// The admin page holds no data, so it needs no token (its script asks for one); registered before
// the admin API, whose every route does.
app.on("GET", [PAGE_PATH, `${PAGE_PATH}/`], () => pageResponse());
app.get(`${ASSETS_PATH}/:file`, (c) => {
  const response = assetResponse(c.req.param("file"));
  return response ?? fail({ kind: "no_route", method: c.req.method, path: c.req.path });
});

app.route("/admin", admin);

// Battle inspection (page, JSON API, live WebSocket) lives on mcp1, which checks the inspection
// token itself. Deployed, mcp1 has no public route, so people reach it here. The raw request goes
// through unchanged: mcp1's WebSocket check compares Origin with the request's own URL.
// The battle webhook's public keys are mcp1's too: the battle platform fetches them here.
for (const path of [
  "/battles",
  "/battles/*",
  "/api/battles",
  "/api/battles/*",
  "/.well-known/battle-webhook-jwks.json",
]) {
  app.get(path, (c) => c.env.MCP1.fetch(c.req.raw));
}

app.notFound((c) =>
  httpResponse(new GatewayError({ kind: "no_route", method: c.req.method, path: c.req.path }), ""),
);

// Every refusal above is thrown as a GatewayError; the funnel answers it (and any bug, with 500).
app.onError((err, c) => httpResponse(err, new URL(c.req.url).origin));

export default app;
