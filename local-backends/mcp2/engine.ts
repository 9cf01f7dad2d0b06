/**
 * The Docker engine as mcp2 reaches it: through the docker CLI, at `DOCKER_HOST` (or the CLI's
 * default socket). Health with a short cache, the caller's containers, removal of a run's
 * container, and the reaper that enforces every container's deadline label.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Health } from "../common/backend.ts";
import { logError } from "../common/backend.ts";
import type { Mcp2Config } from "./config.ts";
import { type Execution, execCli } from "./docker-cli.ts";
import { LABELS } from "./labels.ts";
import { type OwnedContainer, ownedListArgv, parseOwned } from "./ownership.ts";
import { imageFilters } from "./plan.ts";
import { parseVersionFacts, VERSION_FACTS_FORMAT, type VersionView } from "./views.ts";

export type Reachability = { ok: true } | { ok: false; reason: string };

// The only variables of mcp2's environment the CLI sees: where the engine is and how to reach it.
// Everything else (a user's contexts, proxies, credential helpers) stays out.
const PASSED_TO_CLI = [
  "PATH",
  "HOME",
  "DOCKER_HOST",
  "DOCKER_TLS_VERIFY",
  "DOCKER_CERT_PATH",
  "DOCKER_API_VERSION",
  "SSH_AUTH_SOCK",
];
const PROBE_TIMEOUT_MS = 5000;
const HEALTH_CACHE_OK_MS = 10_000;
const HEALTH_CACHE_DOWN_MS = 2000;
const REAP_INTERVAL_MS = 5000;

/** The Docker engine behind `run_docker`. */
export class DockerEngine {
  /** `DOCKER_HOST=…`, or what the CLI falls back to, for messages. */
  readonly where: string;
  private cliEnv: Record<string, string> | undefined;
  private lastProbe: { at: number; result: Reachability } | undefined;
  private probing: Promise<Reachability> | undefined;
  private readonly config: Mcp2Config;
  private readonly env: NodeJS.ProcessEnv;

  constructor(config: Mcp2Config, env: NodeJS.ProcessEnv = process.env) {
    this.config = config;
    this.env = env;
    this.where = env.DOCKER_HOST
      ? `DOCKER_HOST=${env.DOCKER_HOST}`
      : "the default socket (DOCKER_HOST is unset)";
  }

  /** Runs the CLI with `argv`; the time limit defaults to the configured one. */
  exec(argv: string[], options: { timeoutMs?: number; signal?: AbortSignal } = {}) {
    return execCli(argv, {
      cli: this.config.dockerCli,
      env: this.environment(),
      timeoutMs: options.timeoutMs ?? this.config.timeoutSeconds * 1000,
      outputLimit: this.config.outputLimitBytes,
      signal: options.signal,
    });
  }

  /** Whether the engine answers; cached briefly, `fresh` asks again. */
  async reachable(fresh = false): Promise<Reachability> {
    const last = this.lastProbe;
    const ttl = last?.result.ok ? HEALTH_CACHE_OK_MS : HEALTH_CACHE_DOWN_MS;
    if (!fresh && last && Date.now() - last.at < ttl) return last.result;
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  /** `/healthz`: degraded, with the reason, while the engine does not answer. */
  async health(): Promise<Health> {
    const result = await this.reachable();
    return result.ok ? { status: "ok" } : { status: "degraded", reason: result.reason };
  }

  /**
   * Whether the engine already has `image`: `docker image inspect`, the same reference lookup
   * `run` makes, so a tag absent here is one `run` would have had to pull.
   */
  async hasImage(image: string): Promise<boolean> {
    const execution = await this.exec(["image", "inspect", "--format={{.Id}}", image]);
    return execution.exitCode === 0 && execution.stdout.text.trim() !== "";
  }

  /** The caller's containers, or the failed listing. */
  async listOwned(
    agent: string,
  ): Promise<{ ok: true; owned: OwnedContainer[] } | { ok: false; execution: Execution }> {
    const execution = await this.exec(ownedListArgv(agent));
    if (execution.exitCode !== 0 || execution.stdout.truncated) return { ok: false, execution };
    return { ok: true, owned: parseOwned(execution.stdout.text, agent) };
  }

  /** The versions and platform `docker version` would show an agent (views.ts), or the failure. */
  async version(): Promise<
    { ok: true; version: VersionView } | { ok: false; execution: Execution }
  > {
    const execution = await this.exec(["version", `--format=${VERSION_FACTS_FORMAT}`]);
    const version = execution.exitCode === 0 ? parseVersionFacts(execution.stdout.text) : undefined;
    return version ? { ok: true, version } : { ok: false, execution };
  }

  /** IDs of the images the allow-list admits that the engine has, as `docker images` finds them. */
  async allowedImageIds(): Promise<
    { ok: true; ids: string[] } | { ok: false; execution: Execution }
  > {
    const execution = await this.exec([
      "images",
      "--no-trunc",
      "--format={{.ID}}",
      ...imageFilters(this.config),
    ]);
    if (execution.exitCode !== 0 || execution.stdout.truncated) return { ok: false, execution };
    return { ok: true, ids: execution.stdout.text.split("\n").filter(Boolean) };
  }

  /** Kills and removes whatever container a `run` created (after its CLI was killed). */
  async removeRun(runId: string): Promise<void> {
    const listed = await this.exec([
      "ps",
      "--all",
      "--quiet",
      "--no-trunc",
      `--filter=label=${LABELS.run}=${runId}`,
    ]);
    const ids = listed.stdout.text.split("\n").filter((id) => /^[0-9a-f]{64}$/.test(id));
    if (ids.length > 0) await this.exec(["rm", "--force", ...ids]);
  }

  /** Kills and removes every mcp2 container past its deadline; returns their IDs. */
  async reap(nowSeconds = Date.now() / 1000): Promise<string[]> {
    const listed = await this.exec([
      "ps",
      "--all",
      "--no-trunc",
      `--filter=label=${LABELS.managed}=true`,
      `--format={{.ID}}\t{{.Label "${LABELS.deadline}"}}`,
    ]);
    if (listed.exitCode !== 0) return [];
    const expired = expiredContainers(listed.stdout.text, nowSeconds);
    if (expired.length > 0) await this.exec(["rm", "--force", ...expired]);
    return expired;
  }

  /** Reaps now and every few seconds, for as long as the process lives; returns a stop function. */
  startReaper(intervalMs = REAP_INTERVAL_MS): () => void {
    let sweeping = false;
    const sweep = () => {
      if (sweeping) return;
      sweeping = true;
      this.reap()
        .then((ids) => {
          if (ids.length > 0)
            console.log(`[mcp2] removed ${ids.length} container(s) past their time limit`);
        })
        .catch((error: unknown) => logError("mcp2", "reaper", error))
        .finally(() => {
          sweeping = false;
        });
    };
    sweep();
    const timer = setInterval(sweep, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async probe(): Promise<Reachability> {
    const execution = await this.exec(["version", "--format={{.Server.Version}}"], {
      timeoutMs: PROBE_TIMEOUT_MS,
    });
    const result = reachabilityOf(execution, this.config.dockerCli, this.where);
    this.lastProbe = { at: Date.now(), result };
    return result;
  }

  /** The CLI's environment, with a private, empty CLI configuration directory. */
  private environment(): Record<string, string> {
    if (this.cliEnv) return this.cliEnv;
    const env: Record<string, string> = {};
    for (const name of PASSED_TO_CLI) {
      const value = this.env[name];
      if (value !== undefined) env[name] = value;
    }
    env.DOCKER_CONFIG = emptyCliConfig();
    env.DOCKER_CLI_HINTS = "false";
    this.cliEnv = env;
    return env;
  }
}

let cliConfigDir: string | undefined;

/**
 * An empty docker CLI configuration directory, one per process, removed at exit.
 * ~/.docker/config.json can hold credentials, proxies the CLI injects into containers, aliases and
 * plugins: the CLI run for an agent reads this one instead.
 */
function emptyCliConfig(): string {
  if (cliConfigDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "mcp2-docker-config-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    cliConfigDir = dir;
  }
  return cliConfigDir;
}

/** Reads a `docker version` probe: the engine answered, or why not, naming DOCKER_HOST. */
export function reachabilityOf(execution: Execution, cli: string, where: string): Reachability {
  if (execution.ending === "not-started") {
    return {
      ok: false,
      reason: `the docker CLI "${cli}" cannot be started (${execution.startError}); install it or set MCP2_DOCKER_CLI`,
    };
  }
  if (execution.exitCode === 0 && execution.stdout.text.trim() !== "") return { ok: true };
  const detail =
    execution.ending === "timed-out"
      ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s`
      : (execution.stderr.text.trim().split("\n")[0] ?? "").slice(0, 300) || "no answer";
  return { ok: false, reason: `Docker engine not reachable at ${where}: ${detail}` };
}

/** IDs from `ID<TAB>deadline` lines whose deadline has passed; a missing deadline counts as passed. */
export function expiredContainers(listing: string, nowSeconds: number): string[] {
  return listing
    .split("\n")
    .map((line) => line.split("\t"))
    .filter(([id]) => id !== undefined && /^[0-9a-f]{64}$/.test(id))
    .filter(([, deadline]) => {
      const at = Number(deadline);
      return !/^[0-9]+$/.test(deadline ?? "") || !Number.isFinite(at) || at <= nowSeconds;
    })
    .map(([id]) => id as string);
}
