/**
 * mcp3's configuration: the `MCP3_*` environment variables, validated once at start. Pure: takes
 * an environment object, returns a tagged result whose error names the offending variable.
 */

/** Resource limits applied to every sandboxed run (see `sandbox-argv.ts` for how). */
export interface SandboxLimits {
  /** Address space of each process (RLIMIT_AS), bytes. */
  memoryBytes: number;
  /** Processes and threads of one run, whose slot has a uid of its own (RLIMIT_NPROC). */
  maxProcesses: number;
  /** Open file descriptors per process (RLIMIT_NOFILE). */
  maxOpenFiles: number;
  /** Largest file a process may write (RLIMIT_FSIZE), bytes. */
  fileSizeBytes: number;
  /** Size of each of the two in-memory filesystems, /tmp and the working directory, bytes. */
  tmpfsBytes: number;
  /** Bytes kept of stdout and of stderr, each; more stops the program. */
  maxOutputBytes: number;
}

export interface Mcp3Config {
  limits: SandboxLimits;
  /** Wall-clock limit when a call gives no `timeout_seconds`. */
  defaultTimeoutSeconds: number;
  /** The largest `timeout_seconds` a call may ask for. */
  maxTimeoutSeconds: number;
  /** Largest program accepted, in UTF-8 bytes. */
  maxCodeBytes: number;
  /** Programs running at once. */
  concurrency: number;
  /** Calls allowed to wait for a free slot; one more is refused. */
  queueLimit: number;
  /** Programs one agent may run at once (below `concurrency`, so no agent holds every slot). */
  concurrencyPerAgent: number;
  /** Calls one agent may have waiting (so no agent fills the queue). */
  queuePerAgent: number;
  /** The interpreter, an absolute path under /usr (the only system tree the sandbox sees). */
  python: string;
  /** Absolute paths of the three programs that build the sandbox. */
  bwrap: string;
  prlimit: string;
  setpriv: string;
  /**
   * When mcp3 runs as root: the first of `concurrency` consecutive unused uids, one per pool
   * slot (slot i runs as `uid + i`, `sandbox-users.ts`), and the group every run has.
   */
  uid: number;
  gid: number;
}

export type ConfigResult = { ok: true; config: Mcp3Config } | { ok: false; error: string };

const MIB = 1024 * 1024;

interface IntegerSpec {
  fallback: number;
  min: number;
  max: number;
  unit?: string;
}

const INTEGERS = {
  MCP3_TIMEOUT_SECONDS: { fallback: 5, min: 1, max: 600, unit: "seconds" },
  MCP3_MAX_TIMEOUT_SECONDS: { fallback: 8, min: 1, max: 600, unit: "seconds" },
  MCP3_MEMORY_MB: { fallback: 256, min: 32, max: 65536, unit: "MiB" },
  MCP3_MAX_PROCESSES: { fallback: 16, min: 4, max: 4096 },
  MCP3_MAX_OPEN_FILES: { fallback: 64, min: 16, max: 65536 },
  MCP3_FILE_SIZE_MB: { fallback: 16, min: 1, max: 65536, unit: "MiB" },
  MCP3_TMPFS_MB: { fallback: 32, min: 1, max: 65536, unit: "MiB" },
  MCP3_MAX_OUTPUT_BYTES: { fallback: 65536, min: 1024, max: 16 * MIB, unit: "bytes" },
  MCP3_MAX_CODE_BYTES: { fallback: 100_000, min: 1024, max: 16 * MIB, unit: "bytes" },
  MCP3_CONCURRENCY: { fallback: 2, min: 1, max: 64 },
  MCP3_QUEUE: { fallback: 8, min: 0, max: 1024 },
  // Their defaults are half of MCP3_CONCURRENCY and MCP3_QUEUE, rounded up (`perAgent`).
  MCP3_CONCURRENCY_PER_AGENT: { fallback: 1, min: 1, max: 64 },
  MCP3_QUEUE_PER_AGENT: { fallback: 4, min: 0, max: 1024 },
  MCP3_SANDBOX_UID: { fallback: 70000, min: 1, max: 2 ** 32 - 2 },
  MCP3_SANDBOX_GID: { fallback: 65534, min: 1, max: 2 ** 32 - 2 },
} satisfies Record<string, IntegerSpec>;

const PATHS = {
  MCP3_PYTHON: "/usr/bin/python3",
  MCP3_BWRAP: "/usr/bin/bwrap",
  MCP3_PRLIMIT: "/usr/bin/prlimit",
  MCP3_SETPRIV: "/usr/bin/setpriv",
};

/** Every variable mcp3 reads, for documentation and for tests. */
export const CONFIG_VARIABLES = [...Object.keys(INTEGERS), ...Object.keys(PATHS)];

class ConfigError extends Error {}

function integer(
  env: NodeJS.ProcessEnv,
  name: keyof typeof INTEGERS,
  fallback: number = INTEGERS[name].fallback,
): number {
  const spec: IntegerSpec = INTEGERS[name];
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || value < spec.min || value > spec.max) {
    const unit = spec.unit ? ` ${spec.unit}` : "";
    throw new ConfigError(
      `${name} must be a whole number from ${spec.min} to ${spec.max}${unit}, got "${raw}"`,
    );
  }
  return value;
}

function path(env: NodeJS.ProcessEnv, name: keyof typeof PATHS): string {
  const raw = env[name];
  if (raw === undefined || raw === "") return PATHS[name];
  // Absolute: mcp3 may run as root, so a PATH lookup could be steered to another program.
  if (!raw.startsWith("/") || raw.split("/").includes("..")) {
    throw new ConfigError(`${name} must be an absolute path without "..", got "${raw}"`);
  }
  return raw;
}

/**
 * One agent's share of `total` slots or queue places: `name` when set, else half of `total`
 * rounded up, so that with two or more slots one agent always leaves one to the others.
 */
function perAgent(
  env: NodeJS.ProcessEnv,
  name: "MCP3_CONCURRENCY_PER_AGENT" | "MCP3_QUEUE_PER_AGENT",
  total: number,
  totalName: string,
): number {
  const value = integer(env, name, Math.ceil(total / 2));
  if (value > total) {
    throw new ConfigError(`${name} (${value}) must not exceed ${totalName} (${total})`);
  }
  return value;
}

/** Reads and validates the `MCP3_*` variables; the error names the first bad one. */
export function parseMcp3Config(env: NodeJS.ProcessEnv): ConfigResult {
  try {
    const defaultTimeoutSeconds = integer(env, "MCP3_TIMEOUT_SECONDS");
    const maxTimeoutSeconds = integer(env, "MCP3_MAX_TIMEOUT_SECONDS");
    if (defaultTimeoutSeconds > maxTimeoutSeconds) {
      throw new ConfigError(
        `MCP3_TIMEOUT_SECONDS (${defaultTimeoutSeconds}) must not exceed ` +
          `MCP3_MAX_TIMEOUT_SECONDS (${maxTimeoutSeconds})`,
      );
    }
    const python = path(env, "MCP3_PYTHON");
    // The sandbox binds /usr and nothing else of the host's software.
    if (!python.startsWith("/usr/")) {
      throw new ConfigError(
        `MCP3_PYTHON must be under /usr (the sandbox sees only /usr), got "${python}"`,
      );
    }
    const concurrency = integer(env, "MCP3_CONCURRENCY");
    const queueLimit = integer(env, "MCP3_QUEUE");
    const uid = integer(env, "MCP3_SANDBOX_UID");
    const lastUid = uid + concurrency - 1;
    // 65535 is (uid_t)-1 to 16-bit interfaces, and 2^32-1 is "no change" to setresuid(2).
    if (lastUid > INTEGERS.MCP3_SANDBOX_UID.max || (uid <= 65535 && lastUid >= 65535)) {
      throw new ConfigError(
        `MCP3_SANDBOX_UID (${uid}) starts MCP3_CONCURRENCY (${concurrency}) uids, one per ` +
          `slot; ${uid}-${lastUid} must not include 65535 or go past ${INTEGERS.MCP3_SANDBOX_UID.max}`,
      );
    }
    const config: Mcp3Config = {
      limits: {
        memoryBytes: integer(env, "MCP3_MEMORY_MB") * MIB,
        maxProcesses: integer(env, "MCP3_MAX_PROCESSES"),
        maxOpenFiles: integer(env, "MCP3_MAX_OPEN_FILES"),
        fileSizeBytes: integer(env, "MCP3_FILE_SIZE_MB") * MIB,
        tmpfsBytes: integer(env, "MCP3_TMPFS_MB") * MIB,
        maxOutputBytes: integer(env, "MCP3_MAX_OUTPUT_BYTES"),
      },
      defaultTimeoutSeconds,
      maxTimeoutSeconds,
      maxCodeBytes: integer(env, "MCP3_MAX_CODE_BYTES"),
      concurrency,
      queueLimit,
      concurrencyPerAgent: perAgent(
        env,
        "MCP3_CONCURRENCY_PER_AGENT",
        concurrency,
        "MCP3_CONCURRENCY",
      ),
      queuePerAgent: perAgent(env, "MCP3_QUEUE_PER_AGENT", queueLimit, "MCP3_QUEUE"),
      python,
      bwrap: path(env, "MCP3_BWRAP"),
      prlimit: path(env, "MCP3_PRLIMIT"),
      setpriv: path(env, "MCP3_SETPRIV"),
      uid,
      gid: integer(env, "MCP3_SANDBOX_GID"),
    };
    return { ok: true, config };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, error: error.message };
    throw error;
  }
}
