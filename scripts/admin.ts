/**
 * `npm run admin -- <command>`: the gateway's admin API from a terminal (docs/run-time-control.md).
 * Every command is one or two requests to `/admin/*`; what the API answers is printed as JSON, and
 * a refusal exits 1 with the API's message.
 *
 *   policy get | set FILE [--dry-run] | grant AGENT SERVER [TOOL...] [--dry-run]
 *          | ungrant AGENT SERVER [--dry-run] | history [--limit N] | rollback VERSION
 *   agents list | disable AGENT [--note TEXT] | enable AGENT
 *   revoke --jti JTI [--expires-at UNIX] | --agent AGENT [--before UNIX]
 *   revocations
 *   backends list | add ID URL [--identity none|assertion] | remove ID
 *   people list | map email|group NAME AGENT | unmap email|group NAME
 *   clients list | add AGENT [--jwks FILE] | remove CLIENT_ID
 *
 * The token: --token, else MCPCP_ADMIN_TOKEN, else one minted from keys/ for agent "ops" with the
 * `admin` scope (a development gateway trusts those keys). The gateway: --url, else MCPCP_URL,
 * else http://localhost:9003.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { runMain } from "../keys/cli.ts";
import { mintToken } from "../keys/mint.ts";

const USAGE = `usage: npm run admin -- <command> [options]
  policy get                              the policy and its version
  policy set FILE [--dry-run]             replace the policy with FILE (JSON, as policy.json)
  policy grant AGENT SERVER [TOOL...]     give AGENT the TOOLs of SERVER (all of them: none named)
  policy ungrant AGENT SERVER             take SERVER away from AGENT
  policy history [--limit N]              who changed what, newest first
  policy rollback VERSION                 make VERSION's policy the current one
  agents list                             agents, their effective tools, last seen
  agents disable AGENT [--note TEXT]      refuse every token of AGENT
  agents enable AGENT
  revoke --jti JTI [--expires-at UNIX]    refuse one token
  revoke --agent AGENT [--before UNIX]    refuse AGENT's tokens issued before UNIX (default: now)
  revocations                             what is revoked
  backends list                           backends and their health
  backends add ID URL [--identity none|assertion]
  backends remove ID
  people list                             who may sign in with OAuth, as which agent
  people map email|group NAME AGENT       let a person (verified email, or group) sign in as AGENT
  people unmap email|group NAME
  clients list                            agents registered for OAuth client credentials
  clients add AGENT [--jwks FILE]         register AGENT: prints its client_id and secret (once),
                                          or, with FILE (a public JWKS), it signs assertions
  clients remove CLIENT_ID
options: --url URL (MCPCP_URL, default http://localhost:9003), --token TOKEN (MCPCP_ADMIN_TOKEN)
  --dry-run on policy set/grant/ungrant shows what each agent would gain and lose, changing nothing`;

type Policy = Record<string, Record<string, unknown>>;

class Admin {
  private readonly base: URL;
  private readonly token: string;

  constructor(base: URL, token: string) {
    this.base = base;
    this.token = token;
  }

  /** One request; the parsed answer, or an error carrying the API's message. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) {
    const response = await fetch(new URL(`/admin${path}`, this.base), {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }).catch((e: Error) => {
      throw new Error(
        `cannot reach ${this.base.origin}: ${e.cause ?? e.message} (is npm start running?)`,
      );
    });
    const text = await response.text();
    let answer: unknown = text;
    try {
      answer = JSON.parse(text);
    } catch {}
    if (!response.ok) {
      const message =
        typeof answer === "object" && answer !== null && "message" in answer
          ? String((answer as { message: unknown }).message)
          : text.slice(0, 300);
      throw new Error(`${method} /admin${path}: ${response.status} ${message}`);
    }
    return answer as Record<string, unknown>;
  }

  /** Reads the policy, changes it with `edit`, and writes it back under the version it read. */
  async editPolicy(edit: (policy: Policy) => void, dryRun: boolean) {
    const current = (await this.request("GET", "/policy")) as { version: string; policy: Policy };
    edit(current.policy);
    return this.request(
      "PUT",
      `/policy${dryRun ? "?dry_run=1" : ""}`,
      { policy: current.policy },
      {
        "if-match": `"${current.version}"`,
      },
    );
  }
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`admin: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const base = new URL(values.url ?? process.env.MCPCP_URL ?? "http://localhost:9003");
  const token =
    values.token ??
    process.env.MCPCP_ADMIN_TOKEN ??
    (await mintToken({ agent: "ops", scope: "admin", ttlSeconds: 300 }));
  const admin = new Admin(base, token);
  const dryRun = values["dry-run"] === true;
  const [group, command, ...rest] = positionals;
  const need = (count: number) => {
    if (rest.length < count) throw new UsageError(`${group} ${command} needs ${count} argument(s)`);
  };

  let answer: unknown;
  try {
    switch (`${group} ${command ?? ""}`.trim()) {
      case "policy get":
        answer = await admin.request("GET", "/policy");
        break;
      case "policy set": {
        need(1);
        const policy = JSON.parse(await readFile(rest[0] as string, "utf8")) as Policy;
        answer = await admin.editPolicy((current) => {
          for (const agent of Object.keys(current)) delete current[agent];
          Object.assign(current, policy);
        }, dryRun);
        break;
      }
      case "policy grant": {
        need(2);
        const [agent, server, ...tools] = rest as [string, string, ...string[]];
        answer = await admin.editPolicy((policy) => {
          policy[agent] ??= {};
          const grants = policy[agent];
          const held = grants[server];
          grants[server] =
            tools.length === 0 || held === "*"
              ? "*"
              : [...new Set([...(Array.isArray(held) ? held : []), ...tools])];
        }, dryRun);
        break;
      }
      case "policy ungrant": {
        need(2);
        const [agent, server] = rest as [string, string];
        answer = await admin.editPolicy((policy) => {
          delete policy[agent]?.[server];
        }, dryRun);
        break;
      }
      case "policy history":
        answer = await admin.request("GET", `/policy/history?limit=${values.limit ?? 20}`);
        break;
      case "policy rollback": {
        need(1);
        const current = await admin.request("GET", "/policy");
        answer = await admin.request(
          "POST",
          "/policy/rollback",
          { to: rest[0] },
          {
            "if-match": `"${current.version}"`,
          },
        );
        break;
      }
      case "agents list":
        answer = await admin.request("GET", "/agents");
        break;
      case "agents disable":
      case "agents enable":
        need(1);
        answer = await admin.request(
          "POST",
          `/agents/${encodeURIComponent(rest[0] as string)}/${command}`,
          {
            ...(values.note === undefined ? {} : { note: values.note }),
          },
        );
        break;
      case "revoke":
        if (values.jti !== undefined) {
          answer = await admin.request("POST", "/revocations", {
            jti: values.jti,
            ...(values["expires-at"] === undefined
              ? {}
              : { expires_at: Number(values["expires-at"]) }),
          });
        } else if (values.agent !== undefined) {
          answer = await admin.request("POST", "/revocations", {
            agent: values.agent,
            ...(values.before === undefined ? {} : { before: Number(values.before) }),
          });
        } else {
          throw new UsageError("revoke needs --jti or --agent");
        }
        break;
      case "revocations":
        answer = await admin.request("GET", "/revocations");
        break;
      case "backends list":
        answer = await admin.request("GET", "/backends");
        break;
      case "backends add":
        need(2);
        answer = await admin.request("POST", "/backends", {
          id: rest[0],
          url: rest[1],
          identity: values.identity ?? "none",
        });
        break;
      case "backends remove":
        need(1);
        answer = await admin.request(
          "DELETE",
          `/backends/${encodeURIComponent(rest[0] as string)}`,
        );
        break;
      case "clients list":
        answer = await admin.request("GET", "/oauth-clients");
        break;
      case "clients add": {
        need(1);
        const jwks =
          values.jwks === undefined ? undefined : JSON.parse(await readFile(values.jwks, "utf8"));
        answer = await admin.request("POST", "/oauth-clients", {
          agent: rest[0],
          ...(jwks === undefined ? {} : { jwks }),
        });
        break;
      }
      case "clients remove":
        need(1);
        answer = await admin.request(
          "DELETE",
          `/oauth-clients/${encodeURIComponent(rest[0] as string)}`,
        );
        break;
      case "people list":
        answer = await admin.request("GET", "/people");
        break;
      case "people map":
      case "people unmap": {
        const mapping = command === "map";
        need(mapping ? 3 : 2);
        const kind = rest[0];
        if (kind !== "email" && kind !== "group") {
          throw new UsageError(`people ${command} takes email or group, not ${kind}`);
        }
        answer = await admin.request(mapping ? "PUT" : "DELETE", "/people", {
          [kind]: rest[1],
          ...(mapping ? { agent: rest[2] } : {}),
        });
        break;
      }
      default:
        throw new UsageError(`unknown command: ${positionals.join(" ")}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`admin: ${error.message}\n${USAGE}`);
      return 2;
    }
    console.error(`admin: ${(error as Error).message}`);
    return 1;
  }
  console.log(JSON.stringify(answer, null, 2));
  return 0;
}

class UsageError extends Error {}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      token: { type: "string" },
      "dry-run": { type: "boolean" },
      limit: { type: "string" },
      note: { type: "string" },
      jti: { type: "string" },
      "expires-at": { type: "string" },
      agent: { type: "string" },
      before: { type: "string" },
      identity: { type: "string" },
      jwks: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

if (import.meta.main) runMain("admin", main);
