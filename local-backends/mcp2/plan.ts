/**
 * argv (from `splitCommandLine`) → a plan: the exact argv the docker CLI will get, or a refusal.
 *
 * The argv that runs is rebuilt from what was validated, never passed through: one flag per
 * token as `--long=value`, operands after the flags, mcp2's enforced flags and labels added. So no
 * difference between this parser and the CLI's (short-flag groups, `--flag value` versus a value
 * that looks like a flag, a later duplicate) can smuggle anything past the checks. Pure: the
 * caller supplies the agent, the run id and the clock.
 */
import { IMAGE_DIGEST, IMAGE_TAG, type Mcp2Config, splitImage } from "./config.ts";
import {
  describeFlags,
  type FlagSpec,
  SUBCOMMAND_NAMES,
  SUBCOMMANDS,
  type SubcommandSpec,
  stopGraceCap,
} from "./flags.ts";
import { LABELS } from "./labels.ts";
import { engineName, engineNameFilter } from "./names.ts";
import { parseTemplate, type Template } from "./template.ts";
import { VIEW_SHAPES, type ViewName } from "./views.ts";

/** How long after a foreground run's time limit the reaper may take its container. */
export const FOREGROUND_REAPER_GRACE_SECONDS = 30;

export type Plan =
  /** Runs as it is: images, ps (already narrowed to the caller's containers), `--help`. */
  | { kind: "direct"; argv: string[] }
  /**
   * Answered by mcp2 from its own view (views.ts), never by the engine: `argv` is the command as
   * checked, `format` its `--format`, undefined for Docker's plain layout.
   */
  | { kind: "view"; view: ViewName; argv: string[]; format?: Template }
  /**
   * Starts a container; `runId` is its `mcpcp.run` label, to find and remove it after a timeout.
   * `localImage` is set when only a tagless allow-list entry admits the image: it runs only if
   * the engine already has that reference.
   */
  | { kind: "run"; argv: string[]; detached: boolean; runId: string; localImage?: string }
  /**
   * Acts on the caller's containers: each of `refs` (name, ID or ID prefix) must resolve to a
   * container the caller owns; the argv is `[...head, ...fullIds, ...tail]`.
   */
  | { kind: "owned"; head: string[]; refs: string[]; tail: string[] };

export type PlanResult = { ok: true; plan: Plan } | { ok: false; reason: string };

export interface PlanContext {
  config: Mcp2Config;
  /** The calling agent from the proxy, undefined when the request named none. */
  agent: string | undefined;
  /** A fresh unique id for a `run`'s `mcpcp.run` label. */
  runId: string;
  /** Now, in Unix seconds, for the `mcpcp.deadline` label. */
  nowSeconds: number;
}

// Agent ids become label values and filter arguments: keep them to a plain alphabet.
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$/;
const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

const ALLOWED_SUBCOMMANDS = `Allowed subcommands: ${SUBCOMMAND_NAMES.join(", ")}.`;

/** Validates `argv` (with or without a leading `docker`) and builds the argv to run. */
export function planCommand(argv: string[], context: PlanContext): PlanResult {
  const words = argv[0] === "docker" ? argv.slice(1) : argv;
  const [subcommand, ...rest] = words;
  if (subcommand === undefined) {
    return refuse(`a subcommand is missing. ${ALLOWED_SUBCOMMANDS}`);
  }
  if (subcommand.startsWith("-")) {
    return refuse(
      `global docker options such as ${subcommand} are not allowed (mcp2 chooses the engine ` +
        `and the CLI configuration). ${ALLOWED_SUBCOMMANDS}`,
    );
  }
  const spec = Object.hasOwn(SUBCOMMANDS, subcommand) ? SUBCOMMANDS[subcommand] : undefined;
  if (spec === undefined) {
    return refuse(`"docker ${subcommand}" is not allowed. ${ALLOWED_SUBCOMMANDS}`);
  }
  const { agent, config } = context;
  if (spec.needsAgent && (agent === undefined || !AGENT_ID.test(agent))) {
    return refuse(
      `docker ${subcommand} concerns the calling agent's own containers, and this request does ` +
        "not say which agent is calling (call through the MCPCP proxy)",
    );
  }

  const parsed = parseFlags(subcommand, spec, rest, config);
  if (!parsed.ok) return parsed;
  const { flags, operands } = parsed;
  if (flags.some((f) => f.spec.long === "help")) {
    return { ok: true, plan: { kind: "direct", argv: [subcommand, "--help"] } };
  }
  const has = (long: string) => flags.some((f) => f.spec.long === long);
  const emitted = (skip: string[] = []) =>
    flags
      .filter((f) => !skip.includes(f.spec.long))
      .map((f) => emit(f.spec, namespaced(subcommand, f, agent)));
  const usage = (shape: string) => `usage: docker ${subcommand} [OPTIONS] ${shape}`;

  switch (spec.operands) {
    case "none": {
      if (operands.length > 0) {
        return refuse(`docker ${subcommand} takes no arguments here, got "${operands[0]}"`);
      }
      const argv = [subcommand, ...emitted()];
      if (subcommand === "version" || subcommand === "info") {
        const source = flags.find((f) => f.spec.long === "format")?.value;
        if (source === undefined) {
          return { ok: true, plan: { kind: "view", view: subcommand, argv } };
        }
        const parsed = parseTemplate(source, VIEW_SHAPES[subcommand], `docker ${subcommand}`);
        if (!parsed.ok) return parsed;
        return {
          ok: true,
          plan: { kind: "view", view: subcommand, argv, format: parsed.template },
        };
      }
      if (subcommand === "ps") {
        argv.push(
          `--filter=label=${LABELS.managed}=true`,
          `--filter=label=${LABELS.agent}=${agent}`,
        );
      }
      if (subcommand === "images") argv.push(...imageFilters(config));
      return { ok: true, plan: { kind: "direct", argv } };
    }
    case "image-command": {
      const [image, ...command] = operands;
      if (image === undefined)
        return refuse(`${usage("IMAGE [COMMAND] [ARG...]")}: the image is missing`);
      const admitted = admitImage(image, config.allowedImages);
      if (admitted !== "listed" && admitted !== "if-local") {
        const why = admitted === "unlisted-digest" ? ": only digests the list names run" : "";
        return refuse(
          `the image "${image}" is not allowed${why}. Allowed images: ${describeImages(config)}`,
        );
      }
      const detached = has("detach");
      // A foreground run is killed by mcp2's own timer at its time limit; the reaper is only the
      // backstop for an mcp2 that died meanwhile, so it waits longer and never races the timer.
      const lifetime = detached
        ? config.detachedTimeoutSeconds
        : config.timeoutSeconds + FOREGROUND_REAPER_GRACE_SECONDS;
      const enforced = [
        // A foreground container goes when it ends; a detached one stays for `logs` until its
        // time limit, unless the agent asked for --rm.
        ...(detached && !has("rm") ? [] : ["--rm"]),
        // The CLI pulls a missing image by default (--pull=missing): from a public registry, an
        // image nobody chose. mcp2 runs only what the engine already has.
        "--pull=never",
        `--network=${config.network}`,
        `--memory=${config.memory}`,
        `--memory-swap=${config.memory}`,
        `--cpus=${config.cpus}`,
        `--pids-limit=${config.pidsLimit}`,
        "--security-opt=no-new-privileges",
        ...(config.logMaxSize ? [`--log-opt=max-size=${config.logMaxSize}`] : []),
        `--label=${LABELS.managed}=true`,
        `--label=${LABELS.agent}=${agent}`,
        `--label=${LABELS.run}=${context.runId}`,
        `--label=${LABELS.deadline}=${context.nowSeconds + lifetime}`,
      ];
      const argv = ["run", ...emitted(["rm", "network"]), ...enforced, image, ...command];
      const local = admitted === "if-local" ? { localImage: image } : {};
      return { ok: true, plan: { kind: "run", argv, detached, runId: context.runId, ...local } };
    }
    case "container-command":
    case "one-container":
    case "containers": {
      const wantsCommand = spec.operands === "container-command";
      const refs =
        wantsCommand || spec.operands === "one-container" ? operands.slice(0, 1) : operands;
      const tail = wantsCommand ? operands.slice(1) : [];
      const shape = wantsCommand
        ? "CONTAINER COMMAND [ARG...]"
        : spec.operands === "one-container"
          ? "CONTAINER"
          : "CONTAINER [CONTAINER...]";
      if (refs.length === 0) return refuse(`${usage(shape)}: the container is missing`);
      if (wantsCommand && tail.length === 0)
        return refuse(`${usage(shape)}: the command is missing`);
      if (spec.operands === "one-container" && operands.length > 1) {
        return refuse(`${usage(shape)}: one container at a time`);
      }
      const badRef = refs.find((ref) => !CONTAINER_REF.test(ref));
      if (badRef !== undefined) return refuse(`"${badRef}" is not a container name or ID`);
      const head = [subcommand, ...emitted()];
      if (subcommand === "inspect" && !has("type")) head.push("--type=container");
      if (subcommand === "stop" && !has("time")) head.push(`-t=${stopGraceCap(config)}`);
      return { ok: true, plan: { kind: "owned", head, refs, tail } };
    }
  }
}

interface ParsedFlag {
  spec: FlagSpec;
  value?: string;
}

type FlagsResult =
  | { ok: true; flags: ParsedFlag[]; operands: string[] }
  | { ok: false; reason: string };

/**
 * Reads flags the way the docker CLI's flag library (spf13/pflag) does: `--long`, `--long=value`,
 * `--long value`, short groups `-di`, a short value attached (`-eK=V`, `-e=K=V`) or next, `--`
 * ending the flags, and, unless `interspersed`, the first operand ending them too.
 */
function parseFlags(
  subcommand: string,
  spec: SubcommandSpec,
  words: string[],
  config: Mcp2Config,
): FlagsResult {
  const flags: ParsedFlag[] = [];
  const operands: string[] = [];
  const allowed = () => `Allowed flags for docker ${subcommand}: ${describeFlags(spec)}.`;
  const unknown = (name: string): FlagsResult => {
    const spelled = name.length === 1 ? `-${name}` : `--${name}`;
    const reason = Object.hasOwn(spec.refused, name) ? spec.refused[name] : undefined;
    return reason
      ? refuse(`${spelled} is not allowed: ${reason}.`)
      : refuse(`${spelled} is not an allowed flag for docker ${subcommand}. ${allowed()}`);
  };
  const accept = (
    flag: FlagSpec,
    spelled: string,
    value: string | undefined,
  ): FlagsResult | null => {
    if (flag.value === undefined) {
      if (value !== undefined) return refuse(`${spelled} takes no value, got "${value}"`);
      flags.push({ spec: flag });
      return null;
    }
    if (value === undefined) return refuse(`${spelled} needs a value (${flag.value.placeholder})`);
    const problem = flag.value.check(value, config);
    if (problem) return refuse(`${spelled} ${problem}; got "${value}"`);
    flags.push({ spec: flag, value });
    return null;
  };

  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (word === "--") {
      operands.push(...words.slice(i + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-") {
      if (!spec.interspersed) {
        operands.push(...words.slice(i));
        break;
      }
      operands.push(word);
      continue;
    }
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = eq === -1 ? word.slice(2) : word.slice(2, eq);
      const flag = spec.flags.find((f) => f.long === name || f.aliases?.includes(name));
      if (flag === undefined) return unknown(name);
      let value = eq === -1 ? undefined : word.slice(eq + 1);
      if (value === undefined && flag.value !== undefined) value = words[++i];
      const failed = accept(flag, `--${name}`, value);
      if (failed) return failed;
      continue;
    }
    // A short group: switches, and at most one value flag, last, taking the rest or the next word.
    for (let j = 1; j < word.length; j++) {
      const name = word[j] as string;
      const flag = spec.flags.find((f) => f.short === name);
      if (flag === undefined) return unknown(name);
      let value: string | undefined;
      if (flag.value !== undefined) {
        const attached = word.slice(j + 1).replace(/^=/, "");
        value = attached !== "" ? attached : words[++i];
        j = word.length;
      } else if (word[j + 1] === "=") {
        return refuse(`-${name} takes no value, got "${word.slice(j + 2)}"`);
      }
      const failed = accept(flag, `-${name}`, value);
      if (failed) return failed;
    }
  }
  return { ok: true, flags, operands };
}

/**
 * A flag's value as the engine must get it: a container name in the caller's namespace
 * (`run --name`, `ps --filter name=`, names.ts); every other value as it is.
 */
function namespaced(subcommand: string, flag: ParsedFlag, agent: string | undefined) {
  const { spec, value } = flag;
  if (agent === undefined || value === undefined) return value;
  if (subcommand === "run" && spec.long === "name") return engineName(agent, value);
  if (subcommand === "ps" && spec.long === "filter" && value.startsWith("name=")) {
    return `name=${engineNameFilter(agent, value.slice("name=".length))}`;
  }
  return value;
}

/** `docker images` filters that show the images the allow-list admits, and no others. */
export function imageFilters(config: Mcp2Config): string[] {
  // Several reference filters match any of them.
  return config.allowedImages.map((image) => `--filter=reference=${image}`);
}

/** One validated flag as the CLI gets it: `--long` or `--long=value` (or its `emit` spelling). */
function emit(flag: FlagSpec, value: string | undefined): string {
  const name = flag.emit ?? `--${flag.long}`;
  return value === undefined ? name : `${name}=${value}`;
}

/**
 * How the allow-list admits `image`: `listed` (an entry names this tag, or this digest),
 * `if-local` (only a tagless entry `repo` covers it: it may run if the engine already has that
 * tag, never pulled), `unlisted-digest` (a digest no entry names), or `unlisted`. A bare `repo`
 * means `repo:latest`, as Docker reads it. Pure: the engine is asked later (`run-docker.ts`).
 */
export function admitImage(
  image: string,
  allowed: string[],
): "listed" | "if-local" | "unlisted-digest" | "unlisted" {
  if (image.startsWith("-")) return "unlisted";
  const wanted = splitImage(image);
  const rules = allowed.map(splitImage).filter((rule) => rule.repo === wanted.repo);
  if (wanted.digest !== undefined) {
    // `repo:tag@digest` is refused too: Docker would ignore the tag.
    const named =
      wanted.tag === undefined &&
      IMAGE_DIGEST.test(wanted.digest) &&
      rules.some((rule) => rule.digest === wanted.digest);
    return named ? "listed" : "unlisted-digest";
  }
  const tag = wanted.tag ?? "latest";
  if (!IMAGE_TAG.test(tag)) return "unlisted";
  if (rules.some((rule) => rule.digest === undefined && rule.tag === tag)) return "listed";
  const tagless = rules.some((rule) => rule.digest === undefined && rule.tag === undefined);
  return tagless ? "if-local" : "unlisted";
}

/** The allow-list as an agent reads it: what each entry admits. */
export function describeImages(config: Mcp2Config): string {
  return config.allowedImages
    .map((entry) => {
      const { tag, digest } = splitImage(entry);
      return tag === undefined && digest === undefined
        ? `${entry} (tags this engine already has)`
        : entry;
    })
    .join(", ");
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
