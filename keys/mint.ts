/**
 * `npm run token -- --agent agent_name1 [--scope "list_tools call_tools"] [--ttl 3600] [--aud ...]
 * [--iss ...] [--battles b1,b2] [--battle-role judge]`: mints an agent token (RS256 JWT) from keys/private.pem and prints only the token,
 * so `TOKEN=$(npm run -s token -- --agent agent_name1)` works. Claims follow docs/design.md,
 * "Tokens".
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { importPKCS8, SignJWT } from "jose";
import { type BattleClaims, readBattleClaims } from "../common/battle-claims.ts";
import { runMain } from "./cli.ts";
import { ALGORITHM, publicJwkOf, readPrivateKey } from "./key-files.ts";

export const DEFAULT_ISSUER = "https://mcpcp";
export const DEFAULT_AUDIENCE = "mcpcp-server";
export const DEFAULT_SCOPE = "list_tools call_tools";
export const DEFAULT_TTL_SECONDS = 3600;

export interface MintOptions {
  /** The agent id, carried as `sub`. */
  agent: string;
  /** Space-separated scopes, or a list of them. */
  scope?: string | readonly string[];
  ttlSeconds?: number;
  /** One audience, or several (the proxy requires that one of them is its own). */
  audience?: string | string[];
  issuer?: string;
  /** Where private.pem is read from; tests pass a temporary directory. */
  keysDir?: string;
  /** Issue time in seconds since the epoch; tests backdate tokens with it. Defaults to now. */
  now?: number;
  /** The only battles the token reaches (`battles` claim), and its role there (`battle_role`). */
  battles?: readonly string[];
  battleRole?: string;
}

/** The scope that lets a person read battles on mcp1 (page, JSON API, live feed); no agent needs it. */
export const INSPECT_SCOPE = "inspect_battles";
/** How long an inspection token printed by the launcher lasts: a working session. */
export const INSPECT_TTL_SECONDS = 8 * 3600;

/**
 * Signs an inspection token for a person watching battles: `sub` "inspector", scope
 * `inspect_battles` only, so it can list and call no tool. The launcher puts it in the battle
 * page's URL fragment (`/battles#token=…`), which the browser never sends to a server.
 */
export function mintInspectionToken(
  options: Omit<MintOptions, "agent" | "scope"> & { agent?: string } = {},
): Promise<string> {
  return mintToken({
    ttlSeconds: INSPECT_TTL_SECONDS,
    ...options,
    agent: options.agent ?? "inspector",
    scope: INSPECT_SCOPE,
  });
}

/** Signs an agent token with the current private key; the header's kid names it in the JWKS. */
export async function mintToken(options: MintOptions): Promise<string> {
  const ttl = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (options.agent === "") throw new Error("agent must not be empty");
  if (!Number.isInteger(ttl) || ttl <= 0)
    throw new Error(`ttl must be a positive integer, got ${ttl}`);
  const scope =
    typeof options.scope === "string"
      ? options.scope
      : (options.scope ?? [DEFAULT_SCOPE]).join(" ");
  const now = options.now ?? Math.floor(Date.now() / 1000);

  // The proxy and mcp1 refuse a token with malformed battle claims: refuse to mint one.
  const battle = readBattleClaims({ battles: options.battles, battle_role: options.battleRole });
  if (!battle.ok) throw new Error(battle.detail);
  const claims: BattleClaims = battle.claims;

  const { pem, key } = await readPrivateKey(options.keysDir);
  const { kid } = await publicJwkOf(key);
  return new SignJWT({ scope, ...claims })
    .setProtectedHeader({ alg: ALGORITHM, kid, typ: "JWT" })
    .setSubject(options.agent)
    .setIssuer(options.issuer ?? DEFAULT_ISSUER)
    .setAudience(options.audience ?? DEFAULT_AUDIENCE)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ttl)
    .setJti(randomUUID())
    .sign(await importPKCS8(pem, ALGORITHM));
}

const USAGE = `usage: npm run token -- --agent <id> [--scope "list_tools call_tools"] [--ttl 3600]
                          [--aud mcpcp-server]... [--iss https://mcpcp]
                          [--battles b1,b2] [--battle-role judge]
  --agent  agent id (the token's sub), e.g. agent_name1
  --scope  space-separated scopes: list_tools to list, call_tools to call (default both)
  --ttl    lifetime in seconds (default ${DEFAULT_TTL_SECONDS})
  --aud    audience; repeat for several (default ${DEFAULT_AUDIENCE})
  --iss    issuer (default ${DEFAULT_ISSUER})
  --battles      comma-separated battle ids: the only battles the token reaches (at most 100)
  --battle-role  the agent's role in those battles; judge may report their end`;

class UsageError extends Error {}

/** Turns command-line arguments into mint options; throws UsageError on anything invalid. */
export function parseMintArgs(args: string[]): MintOptions {
  let values: {
    agent?: string;
    scope?: string;
    ttl?: string;
    aud?: string[];
    iss?: string;
    battles?: string;
    "battle-role"?: string;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        agent: { type: "string" },
        scope: { type: "string" },
        ttl: { type: "string" },
        aud: { type: "string", multiple: true },
        iss: { type: "string" },
        battles: { type: "string" },
        "battle-role": { type: "string" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (!values.agent) throw new UsageError("--agent is required");
  const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
  if (ttl !== undefined && (!/^\d+$/.test(values.ttl ?? "") || ttl <= 0)) {
    throw new UsageError(`--ttl must be a positive whole number of seconds, got "${values.ttl}"`);
  }
  if (values.iss === "") throw new UsageError("--iss must not be empty");
  if (values.aud?.some((aud) => aud === "")) throw new UsageError("--aud must not be empty");
  const audience = values.aud?.length === 1 ? values.aud[0] : values.aud;
  const battles = values.battles === undefined ? undefined : values.battles.split(",");
  const checked = readBattleClaims({ battles, battle_role: values["battle-role"] });
  if (!checked.ok)
    throw new UsageError(`--${checked.detail.replace(" claim", "").replace("_", "-")}`);
  return {
    agent: values.agent,
    ...(values.scope !== undefined && { scope: values.scope }),
    ...(ttl !== undefined && { ttlSeconds: ttl }),
    ...(audience !== undefined && { audience }),
    ...(values.iss !== undefined && { issuer: values.iss }),
    ...(battles !== undefined && { battles }),
    ...(values["battle-role"] !== undefined && { battleRole: values["battle-role"] }),
  };
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let options: MintOptions;
  try {
    options = parseMintArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`token: ${error.message}\n${USAGE}`);
    return 2;
  }
  console.log(await mintToken(options));
  return 0;
}

if (import.meta.main) runMain("token", main);
