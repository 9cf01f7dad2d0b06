/**
 * mcp2's configuration: the environment, validated once at start into plain data. Every error names
 * the variable it comes from (STYLE.md: configuration errors fail at start). Pure: no I/O.
 */

/** The limits and permissions `run_docker` enforces; see the README's mcp2 section. */
export interface Mcp2Config {
  /**
   * Images `run` may start: `repo` (any tag the engine already has), `repo:tag` (that tag) or
   * `repo@sha256:…` (that digest). Nothing is ever pulled (`--pull=never`).
   */
  allowedImages: string[];
  /** `--memory` (and `--memory-swap`, so no swap on top) for every container, e.g. `256m`. */
  memory: string;
  /** `--cpus` for every container, e.g. `1` or `0.5`. */
  cpus: string;
  /** `--pids-limit` for every container. */
  pidsLimit: number;
  /** `--network` for every container: `none`, or a named user network. Never host or container:. */
  network: string;
  /** Whether `run -p 127.0.0.1:HOST:CONTAINER` is allowed (never on other interfaces). */
  allowPublish: boolean;
  /** Wall-clock limit of one command; a foreground `run` past it is killed and removed. */
  timeoutSeconds: number;
  /** How long a detached container may live before mcp2 kills and removes it. */
  detachedTimeoutSeconds: number;
  /** Containers (running or stopped) one agent may have at once. */
  maxContainersPerAgent: number;
  /** Bytes kept of each of stdout and stderr; the rest is counted and marked as truncated. */
  outputLimitBytes: number;
  /** json-file/local log driver `max-size` for every container, or undefined to leave it unset. */
  logMaxSize: string | undefined;
  /** The docker CLI to run (a name on PATH or an absolute path). */
  dockerCli: string;
}

export type ConfigResult = { ok: true; config: Mcp2Config } | { ok: false; errors: string[] };

export const DEFAULT_CONFIG: Mcp2Config = {
  // The image `.ci/docker.sh setup` builds offline from busybox-static.
  allowedImages: ["mcpcp/busybox"],
  memory: "256m",
  cpus: "1",
  pidsLimit: 64,
  network: "none",
  allowPublish: false,
  // Below the proxy's BACKEND_TIMEOUT_MS (10 s), so an agent hears mcp2's own "timed out, killed
  // and removed" rather than the proxy giving up first.
  timeoutSeconds: 8,
  detachedTimeoutSeconds: 300,
  maxContainersPerAgent: 5,
  outputLimitBytes: 32_768,
  logMaxSize: "1m",
  dockerCli: "docker",
};

// Docker's reference grammar, narrowed: lowercase path components, optional registry host[:port],
// optional tag or sha256 digest. No wildcards: an allow-list entry names images, it does not match
// patterns.
const IMAGE_REPO =
  /^(?:[a-z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/;
/** A tag as Docker spells one. */
export const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** A content digest: sha256 only, the one Docker computes for manifests. */
export const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;
const SIZE = /^[0-9]+[bkmg]?$/i;
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MIN_MEMORY_BYTES = 6 * 1024 * 1024; // Docker refuses less than 6 MiB.

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };
const valid = <T>(value: T): Parsed<T> => ({ ok: true, value });
const invalid = (error: string): Parsed<never> => ({ ok: false, error });

/** Reads and validates mcp2's variables from `env`; unset or empty means the default. */
export function parseConfig(env: Record<string, string | undefined>): ConfigResult {
  const errors: string[] = [];
  function read<T>(name: string, fallback: T, parse: (raw: string) => Parsed<T>): T {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === "") return fallback;
    const parsed = parse(raw);
    if (parsed.ok) return parsed.value;
    errors.push(`${name} ${parsed.error}, got "${raw}"`);
    return fallback;
  }

  const config: Mcp2Config = {
    allowedImages: read("MCP2_ALLOWED_IMAGES", DEFAULT_CONFIG.allowedImages, (raw) => {
      const images = raw.split(/[\s,]+/).filter(Boolean);
      const bad = images.filter((image) => !isImageEntry(image));
      return bad.length === 0
        ? valid(images)
        : invalid(
            "must list image references (repo, repo:tag or repo@sha256:<64 hex digits>, no " +
              `wildcards); not: ${bad.join(", ")}`,
          );
    }),
    memory: read("MCP2_MEMORY", DEFAULT_CONFIG.memory, (raw) => {
      const bytes = sizeInBytes(raw);
      if (bytes === undefined) return invalid("must be a size such as 256m or 1g");
      return bytes < MIN_MEMORY_BYTES
        ? invalid("must be at least 6m (Docker's minimum)")
        : valid(raw);
    }),
    cpus: read("MCP2_CPUS", DEFAULT_CONFIG.cpus, (raw) =>
      /^[0-9]+(\.[0-9]+)?$/.test(raw) && Number(raw) > 0 && Number(raw) <= 64
        ? valid(raw)
        : invalid("must be a number of CPUs above 0 and at most 64, such as 1 or 0.5"),
    ),
    pidsLimit: read("MCP2_PIDS_LIMIT", DEFAULT_CONFIG.pidsLimit, integerIn(8, 100_000)),
    network: read("MCP2_NETWORK", DEFAULT_CONFIG.network, (raw) => {
      if (raw === "host" || raw.startsWith("container:")) {
        return invalid("must not share the host's or another container's network");
      }
      return NETWORK_NAME.test(raw) ? valid(raw) : invalid("must be none or a network name");
    }),
    allowPublish: read("MCP2_ALLOW_PUBLISH", DEFAULT_CONFIG.allowPublish, (raw) => {
      if (/^(true|1|yes)$/i.test(raw)) return valid(true);
      if (/^(false|0|no)$/i.test(raw)) return valid(false);
      return invalid("must be true or false");
    }),
    timeoutSeconds: read("MCP2_TIMEOUT_SECONDS", DEFAULT_CONFIG.timeoutSeconds, integerIn(1, 3600)),
    detachedTimeoutSeconds: read(
      "MCP2_DETACHED_TIMEOUT_SECONDS",
      DEFAULT_CONFIG.detachedTimeoutSeconds,
      integerIn(1, 7 * 24 * 3600),
    ),
    maxContainersPerAgent: read(
      "MCP2_MAX_CONTAINERS",
      DEFAULT_CONFIG.maxContainersPerAgent,
      integerIn(1, 1000),
    ),
    outputLimitBytes: read(
      "MCP2_OUTPUT_LIMIT_BYTES",
      DEFAULT_CONFIG.outputLimitBytes,
      integerIn(256, 16 * 1024 * 1024),
    ),
    logMaxSize: read<string | undefined>("MCP2_LOG_MAX_SIZE", DEFAULT_CONFIG.logMaxSize, (raw) => {
      if (raw === "none") return valid(undefined);
      return sizeInBytes(raw) ? valid(raw) : invalid("must be a size such as 1m, or none");
    }),
    dockerCli: read("MCP2_DOCKER_CLI", DEFAULT_CONFIG.dockerCli, (raw) =>
      /^[A-Za-z0-9_./+-]+$/.test(raw) ? valid(raw) : invalid("must be a program name or path"),
    ),
  };
  return errors.length === 0 ? { ok: true, config } : { ok: false, errors };
}

/**
 * Whether `entry` is an allow-list entry: `repo`, `repo:tag` or `repo@sha256:…`. Not
 * `repo:tag@digest`: Docker ignores the tag there, so the entry would say more than it means.
 */
function isImageEntry(entry: string): boolean {
  const { repo, tag, digest } = splitImage(entry);
  if (!IMAGE_REPO.test(repo)) return false;
  if (digest !== undefined) return tag === undefined && IMAGE_DIGEST.test(digest);
  return tag === undefined || IMAGE_TAG.test(tag);
}

/** Splits `repo[:tag][@digest]`; a `:` before the last `/` belongs to a registry port. */
export function splitImage(ref: string): { repo: string; tag?: string; digest?: string } {
  const at = ref.indexOf("@");
  const name = at === -1 ? ref : ref.slice(0, at);
  const digest = at === -1 ? undefined : ref.slice(at + 1);
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    return { repo: name.slice(0, colon), tag: name.slice(colon + 1), digest };
  }
  return { repo: name, digest };
}

/** `256m` → bytes (Docker's units: b, k, m, g, powers of 1024), undefined when malformed. */
export function sizeInBytes(size: string): number | undefined {
  if (!SIZE.test(size)) return undefined;
  const unit = size.at(-1)?.toLowerCase() ?? "";
  const power = { b: 0, k: 1, m: 2, g: 3 }[unit];
  const digits = power === undefined ? size : size.slice(0, -1);
  return Number(digits) * 1024 ** (power ?? 0);
}

function integerIn(min: number, max: number): (raw: string) => Parsed<number> {
  return (raw) => {
    const value = Number(raw);
    return /^[0-9]+$/.test(raw) && value >= min && value <= max
      ? valid(value)
      : invalid(`must be a whole number from ${min} to ${max}`);
  };
}
