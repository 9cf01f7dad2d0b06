/**
 * The MCPCP gateway Worker. A request to `/mcp` goes, top to bottom:
 * Origin check → token (jose) → scope for the method → per-agent MCP server (SDK) → backends.
 */
import { type AuthInfo, createMcpHandler, type McpHttpHandler } from "@modelcontextprotocol/server";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { type AgentIdentity, extractBearer, SCOPES, verifyAgentToken } from "./auth.ts";
import { type GatewayConfig, loadConfig } from "./config.ts";
import { insufficientScope, RESOURCE_METADATA_PATH, rpcFailure, unauthorized } from "./errors.ts";
import { createGatewayServer } from "./gateway.ts";
import { originAllowed } from "./origin.ts";
import { missingScope } from "./scopes.ts";

/** The largest request body the gateway reads (the SDK's own default). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

type Gateway = { config: GatewayConfig; mcp: McpHttpHandler };
type Vars = { gateway: Gateway; identity: AgentIdentity };

type GatewayResult = { ok: true; value: Gateway } | { ok: false; error: string };

// Bindings do not change within an isolate, so the configuration is validated once per env.
const gateways = new WeakMap<object, Promise<GatewayResult>>();

function gatewayFor(env: Env): Promise<GatewayResult> {
  let gateway = gateways.get(env);
  if (!gateway) {
    gateway = loadConfig(env).then(
      (config): GatewayResult =>
        config.ok
          ? {
              ok: true,
              value: { config: config.value, mcp: createMcpHandler(serverFor(config.value)) },
            }
          : config,
    );
    gateways.set(env, gateway);
  }
  return gateway;
}

// The MCP handler builds a server per request; the verified identity rides in `authInfo`.
function serverFor(config: GatewayConfig) {
  return ({ authInfo }: { authInfo?: AuthInfo }) => {
    const identity = authInfo?.extra?.identity as AgentIdentity | undefined;
    if (!identity) throw new Error("MCP request reached the gateway server without an identity");
    return createGatewayServer(config, identity);
  };
}

const app = new Hono<{ Bindings: Env; Variables: Vars }>();

app.get("/healthz", (c) => c.json({ status: "ok", server: "proxy" }));

/** RFC 9728 protected resource metadata: what this resource is and which scopes it knows. */
app.on("GET", [RESOURCE_METADATA_PATH, `${RESOURCE_METADATA_PATH}/mcp`], (c) => {
  const origin = new URL(c.req.url).origin;
  return c.json({
    resource: `${origin}/mcp`,
    resource_name: "MCPCP gateway",
    bearer_methods_supported: ["header"],
    scopes_supported: [SCOPES.list, SCOPES.call],
  });
});

/** The proxy's public assertion keys: what mcp2 and mcp3 verify the proxy's assertions with. */
app.get("/.well-known/jwks.json", async (c) => {
  const gateway = await gatewayFor(c.env);
  if (!gateway.ok) return configFailure(gateway.error);
  return c.json(gateway.value.config.publicJwks);
});

app.use("/mcp", async (c, next) => {
  const gateway = await gatewayFor(c.env);
  if (!gateway.ok) return configFailure(gateway.error);
  c.set("gateway", gateway.value);
  const url = new URL(c.req.url);
  if (!originAllowed(c.req.header("origin"), url, gateway.value.config.allowedOrigins)) {
    return rpcFailure(403, -32600, "Origin not allowed");
  }
  const bearer = extractBearer(c.req.header("authorization"), url);
  if (!bearer.ok) return unauthorized(url.origin, bearer.code);
  const { config } = gateway.value;
  const verified = await verifyAgentToken(bearer.token, config.keys, {
    issuer: config.issuer,
    audience: config.audience,
  });
  if (!verified.ok) {
    console.warn(
      JSON.stringify({ event: "auth_failed", code: verified.code, detail: verified.detail }),
    );
    return unauthorized(url.origin, verified.code);
  }
  c.set("identity", verified.identity);
  await next();
});

app.post(
  "/mcp",
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => rpcFailure(413, -32600, `Request body larger than ${MAX_BODY_BYTES} bytes`),
  }),
  async (c) => {
    const identity = c.get("identity");
    const { mcp } = c.get("gateway");
    const text = await c.req.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: the SDK answers with the JSON-RPC parse error the spec asks for.
      return mcp.fetch(new Request(c.req.raw, { body: text }), { authInfo: authInfoFor(identity) });
    }
    const missing = missingScope(body, identity.scopes);
    if (missing) return insufficientScope(new URL(c.req.url).origin, missing.id, missing.scope);
    return mcp.fetch(c.req.raw, { authInfo: authInfoFor(identity), parsedBody: body });
  },
);

// GET (server stream) and DELETE (session end) belong to sessions; the SDK answers them per spec.
app.on(["GET", "DELETE"], "/mcp", (c) =>
  c.get("gateway").mcp.fetch(c.req.raw, { authInfo: authInfoFor(c.get("identity")) }),
);

app.notFound((c) =>
  c.json({ error: "not_found", message: `No route for ${c.req.method} ${c.req.path}` }, 404),
);

app.onError((err, c) => {
  console.error(JSON.stringify({ event: "unhandled_error", path: c.req.path, error: String(err) }));
  return rpcFailure(500, -32603, "Internal gateway error");
});

function configFailure(error: string): Response {
  console.error(JSON.stringify({ event: "config_invalid", error }));
  return rpcFailure(500, -32603, "Gateway configuration error; see the gateway's log");
}

function authInfoFor(identity: AgentIdentity): AuthInfo {
  return {
    // The agent's token never travels further than this Worker, not even into the MCP layer.
    token: "",
    clientId: identity.agent,
    scopes: [...identity.scopes],
    expiresAt: identity.expiresAt,
    extra: { identity },
  };
}

export default app;
