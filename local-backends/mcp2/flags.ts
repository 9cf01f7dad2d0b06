/**
 * What an agent may pass to each docker subcommand: an allow-list of flags, each with the values it
 * accepts. A flag that is not listed is refused (deny by default: a new Docker release adding a
 * dangerous flag changes nothing here). Flags that are refused for a reason worth telling the
 * agent carry that reason. Plain data and small checks; no I/O.
 */
import type { Mcp2Config } from "./config.ts";
import { LABEL_PREFIX } from "./labels.ts";

/** Returns why `value` is refused, or null when it is fine. */
type ValueCheck = (value: string, config: Mcp2Config) => string | null;

export interface FlagSpec {
  /** The long name without dashes; the flag is always passed on as `--long[=value]`. */
  long: string;
  short?: string;
  /** Other long names the docker CLI accepts for the same flag. */
  aliases?: string[];
  /** Takes a value (`--name web`, `--name=web`, `-e=X=1`, `-eX=1`); otherwise a switch. */
  value?: { placeholder: string; check: ValueCheck };
  /** The spelling to pass on when `--long` is not understood by every CLI version. */
  emit?: string;
}

/** What follows the flags: nothing, container references, or an image or container + command. */
export type Operands =
  | "none"
  | "one-container"
  | "containers"
  | "image-command"
  | "container-command";

export interface SubcommandSpec {
  flags: FlagSpec[];
  /** Flags refused with a reason, by every spelling (long, short, alias). */
  refused: Record<string, string>;
  /**
   * Whether flags may follow operands (`logs web --tail 5`). `run` and `exec` stop at the first
   * operand, as the docker CLI does: what follows is the container's command, not docker's flags.
   */
  interspersed: boolean;
  operands: Operands;
  /** Whether the command acts on or lists the caller's containers, so it needs a known caller. */
  needsAgent: boolean;
}

// Docker's own grammars for the names it accepts.
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const NAME_FILTER = /^\^?\/?[a-zA-Z0-9_.-]{1,128}$/;
const ENV = /^[A-Za-z_][A-Za-z0-9_]*=/;
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$/;
const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(=.*)?$/s;
const CAPABILITY = /^[A-Za-z_]{1,40}$/;
const SIGNAL = /^[A-Za-z0-9+]{1,16}$/;
const TIMESTAMP = /^[0-9A-Za-z:.+-]{1,40}$/;
const PUBLISH = /^127\.0\.0\.1:([0-9]{1,5}):([0-9]{1,5})(\/(tcp|udp))?$/;

const any =
  (max: number): ValueCheck =>
  (value) =>
    value.length <= max ? null : `is longer than ${max} characters`;
const matches =
  (pattern: RegExp, what: string): ValueCheck =>
  (value) =>
    pattern.test(value) ? null : `must be ${what}`;
const integer =
  (min: number, max: (config: Mcp2Config) => number): ValueCheck =>
  (value, config) =>
    /^[0-9]{1,9}$/.test(value) && Number(value) >= min && Number(value) <= max(config)
      ? null
      : `must be a whole number from ${min} to ${max(config)}`;
const filterKeys =
  (keys: string[]): ValueCheck =>
  (value) => {
    const key = value.split("=", 1)[0] ?? "";
    if (!value.includes("=") || !keys.includes(key)) {
      return `must be KEY=VALUE with KEY one of ${keys.join(", ")}`;
    }
    // Names are per agent (names.ts): a name filter is rewritten into the caller's namespace,
    // which a plain name or part of one, anchored or not, always can be.
    if (key === "name" && !NAME_FILTER.test(value.slice("name=".length))) {
      return "name= must be a name or part of one, ^ in front to match from the start";
    }
    return value.length <= 512 ? null : "is too long";
  };

const label: ValueCheck = (value) => {
  if (!LABEL.test(value)) return "must be KEY or KEY=VALUE";
  return value.toLowerCase().startsWith(LABEL_PREFIX)
    ? `may not set ${LABEL_PREFIX}* labels: mcp2 sets those to record who owns a container`
    : null;
};
const network: ValueCheck = (value, config) =>
  value === config.network ? null : `must be ${config.network} (the only network allowed here)`;
const publish: ValueCheck = (value, config) => {
  if (!config.allowPublish) return "is off: publishing ports is not allowed here";
  const match = PUBLISH.exec(value);
  const [hostPort, containerPort] = [Number(match?.[1]), Number(match?.[2])];
  if (!match || hostPort < 1024 || hostPort > 65535 || containerPort < 1 || containerPort > 65535) {
    return "must be 127.0.0.1:HOSTPORT:CONTAINERPORT[/tcp|udp] with HOSTPORT 1024-65535 (loopback only)";
  }
  return null;
};

/**
 * `--format`: a Go template evaluated by the CLI over data the command already returns, or, for
 * version and info, by mcp2 over its own view (template.ts, checked when planned). Its short form
 * `-f` exists only where `-f` is not `--filter` (version, info, inspect).
 */
const format: FlagSpec = { long: "format", value: { placeholder: "TEMPLATE", check: any(4096) } };
const formatF: FlagSpec = { ...format, short: "f" };
const help: FlagSpec = { long: "help" };

const limitsReason = (what: string) =>
  `${what}: mcp2 sets memory, CPU and process limits on every container`;
const noTty = "no terminal is attached to run_docker; drop -t/--tty";

/** Every spelling of `names` mapped to `reason`. */
function reasons(entries: [string[], string][]): Record<string, string> {
  return Object.fromEntries(entries.flatMap(([names, reason]) => names.map((n) => [n, reason])));
}

const RUN_REFUSED = reasons([
  [["privileged"], "it would give the container control of the host"],
  [
    ["v", "volume", "mount", "volumes-from", "tmpfs"],
    "no volumes or mounts: containers see no host files and share no storage",
  ],
  [["cap-add"], "no extra capabilities (--cap-drop is allowed)"],
  [["device", "device-cgroup-rule", "gpus"], "no host devices"],
  [["security-opt"], "mcp2 sets the security options (no-new-privileges)"],
  [["cgroup-parent", "cgroupns"], "containers stay in Docker's own cgroups"],
  [["pid", "ipc", "uts", "userns"], "containers keep their own namespaces"],
  [["m", "memory", "memory-swap", "memory-reservation", "kernel-memory"], limitsReason("memory")],
  [
    ["cpus", "c", "cpu-shares", "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems"],
    limitsReason("CPU"),
  ],
  [
    ["pids-limit", "ulimit", "oom-kill-disable", "oom-score-adj", "shm-size"],
    limitsReason("limits"),
  ],
  [["P", "publish-all"], "publish ports one at a time with -p 127.0.0.1:HOSTPORT:CONTAINERPORT"],
  [["t", "tty"], noTty],
  [["env-file", "label-file", "cidfile"], "mcp2 reads and writes no files on its host for you"],
  [["restart"], "containers do not restart: mcp2 removes them after their time limit"],
  [["runtime", "isolation"], "containers use the engine's default runtime"],
  [["log-driver", "log-opt"], "mcp2 sets the logging options"],
  [["sysctl"], "kernel parameters cannot be changed"],
  [
    [
      "link",
      "network-alias",
      "ip",
      "ip6",
      "mac-address",
      "add-host",
      "dns",
      "dns-option",
      "dns-search",
    ],
    "networking options are fixed (--network is set by mcp2)",
  ],
  [["pull", "platform", "disable-content-trust"], "images come from the allow-list as they are"],
]);

/** The subcommands an agent may run, and how. */
export const SUBCOMMANDS: Record<string, SubcommandSpec> = {
  version: {
    flags: [formatF, help],
    refused: {},
    interspersed: true,
    operands: "none",
    needsAgent: false,
  },
  info: {
    flags: [formatF, help],
    refused: {},
    interspersed: true,
    operands: "none",
    // Answered by mcp2 from the caller's own containers (views.ts), so it needs the caller.
    needsAgent: true,
  },
  ps: {
    flags: [
      { long: "all", short: "a" },
      { long: "quiet", short: "q" },
      { long: "latest", short: "l" },
      { long: "last", short: "n", value: { placeholder: "N", check: integer(0, () => 1000) } },
      { long: "size", short: "s" },
      { long: "no-trunc" },
      format,
      {
        long: "filter",
        short: "f",
        value: {
          placeholder: "KEY=VALUE",
          check: filterKeys(["id", "name", "label", "status", "exited", "health"]),
        },
      },
      help,
    ],
    refused: {},
    interspersed: true,
    operands: "none",
    needsAgent: true,
  },
  images: {
    flags: [
      { long: "all", short: "a" },
      { long: "quiet", short: "q" },
      { long: "no-trunc" },
      { long: "digests" },
      format,
      {
        long: "filter",
        short: "f",
        value: { placeholder: "KEY=VALUE", check: filterKeys(["dangling", "label"]) },
      },
      help,
    ],
    refused: {},
    interspersed: true,
    operands: "none",
    needsAgent: false,
  },
  run: {
    flags: [
      { long: "detach", short: "d" },
      { long: "rm" },
      { long: "interactive", short: "i" },
      { long: "init" },
      { long: "read-only" },
      { long: "quiet", short: "q" },
      {
        long: "name",
        value: {
          placeholder: "NAME",
          check: matches(CONTAINER_NAME, "a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"),
        },
      },
      { long: "env", short: "e", value: { placeholder: "KEY=VALUE", check: envCheck } },
      { long: "label", short: "l", value: { placeholder: "KEY=VALUE", check: label } },
      {
        long: "workdir",
        short: "w",
        value: {
          placeholder: "DIR",
          check: matches(/^\/.{0,1023}$/s, "an absolute path in the container"),
        },
      },
      {
        long: "user",
        short: "u",
        value: {
          placeholder: "USER[:GROUP]",
          check: matches(USER, "a user name or id, optionally :group"),
        },
      },
      {
        long: "hostname",
        short: "h",
        value: { placeholder: "NAME", check: matches(HOSTNAME, "a host name") },
      },
      { long: "entrypoint", value: { placeholder: "COMMAND", check: any(1024) } },
      {
        long: "cap-drop",
        value: {
          placeholder: "CAPABILITY",
          check: matches(CAPABILITY, "a capability name or ALL"),
        },
      },
      {
        long: "stop-signal",
        value: { placeholder: "SIGNAL", check: matches(SIGNAL, "a signal name or number") },
      },
      { long: "network", aliases: ["net"], value: { placeholder: "NETWORK", check: network } },
      {
        long: "publish",
        short: "p",
        value: { placeholder: "127.0.0.1:HOSTPORT:CONTAINERPORT", check: publish },
      },
      help,
    ],
    refused: RUN_REFUSED,
    interspersed: false,
    operands: "image-command",
    needsAgent: true,
  },
  logs: {
    flags: [
      {
        long: "tail",
        short: "n",
        value: {
          placeholder: "N",
          check: matches(/^([0-9]{1,9}|all)$/, "a number of lines or all"),
        },
      },
      { long: "timestamps", short: "t" },
      {
        long: "since",
        value: { placeholder: "TIME", check: matches(TIMESTAMP, "a timestamp or duration") },
      },
      {
        long: "until",
        value: { placeholder: "TIME", check: matches(TIMESTAMP, "a timestamp or duration") },
      },
      { long: "details" },
      help,
    ],
    refused: reasons([
      [["f", "follow"], "it never ends; read the logs again instead (--since helps)"],
    ]),
    interspersed: true,
    operands: "one-container",
    needsAgent: true,
  },
  inspect: {
    flags: [
      formatF,
      { long: "size", short: "s" },
      {
        long: "type",
        value: {
          placeholder: "container",
          check: matches(/^container$/, "container (only containers can be inspected)"),
        },
      },
      help,
    ],
    refused: {},
    interspersed: true,
    operands: "containers",
    needsAgent: true,
  },
  stop: {
    flags: [
      {
        long: "time",
        short: "t",
        aliases: ["timeout"],
        // `-t` is understood by every CLI; the long name changed (`--time` → `--timeout`, v25).
        emit: "-t",
        value: { placeholder: "SECONDS", check: integer(0, stopGraceCap) },
      },
      {
        long: "signal",
        short: "s",
        value: { placeholder: "SIGNAL", check: matches(SIGNAL, "a signal name or number") },
      },
      help,
    ],
    refused: {},
    interspersed: true,
    operands: "containers",
    needsAgent: true,
  },
  rm: {
    flags: [{ long: "force", short: "f" }, { long: "volumes", short: "v" }, help],
    refused: reasons([[["l", "link"], "links are not used here"]]),
    interspersed: true,
    operands: "containers",
    needsAgent: true,
  },
  exec: {
    flags: [
      { long: "detach", short: "d" },
      { long: "interactive", short: "i" },
      { long: "env", short: "e", value: { placeholder: "KEY=VALUE", check: envCheck } },
      {
        long: "user",
        short: "u",
        value: {
          placeholder: "USER[:GROUP]",
          check: matches(USER, "a user name or id, optionally :group"),
        },
      },
      {
        long: "workdir",
        short: "w",
        value: {
          placeholder: "DIR",
          check: matches(/^\/.{0,1023}$/s, "an absolute path in the container"),
        },
      },
      help,
    ],
    refused: reasons([
      [["privileged"], "it would give the process control of the host"],
      [["t", "tty"], noTty],
      [["env-file"], "mcp2 reads no files on its host for you"],
    ]),
    interspersed: false,
    operands: "container-command",
    needsAgent: true,
  },
};

export const SUBCOMMAND_NAMES = Object.keys(SUBCOMMANDS);

/** `-e KEY=VALUE` only: a bare `-e KEY` would copy KEY from mcp2's own environment. */
function envCheck(value: string): string | null {
  if (!ENV.test(value)) return "must be KEY=VALUE (a bare KEY would copy mcp2's own environment)";
  return value.length <= 4096 ? null : "is longer than 4096 characters";
}

/**
 * The longest `stop -t` that still ends inside the command's time limit; also the default, since
 * Docker's own 10 s would outlast it (a container's PID 1 often ignores SIGTERM).
 */
export function stopGraceCap(config: Mcp2Config): number {
  return Math.max(0, Math.min(10, config.timeoutSeconds - 2));
}

/** `-d/--detach`, `--name NAME`: how flags are listed in refusals. */
export function describeFlags(spec: SubcommandSpec): string {
  return spec.flags
    .map((flag) => {
      const names = [flag.short && `-${flag.short}`, `--${flag.long}`].filter(Boolean).join("/");
      return flag.value ? `${names} ${flag.value.placeholder}` : names;
    })
    .join(", ");
}
