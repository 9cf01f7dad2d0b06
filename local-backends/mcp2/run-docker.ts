/**
 * The `run_docker` tool: command line → argv → plan → (mcp2's own view | ownership, capacity) →
 * the CLI → result, in the caller's container names.
 * The checks are the pure modules beside this one; this file only puts them in order and does
 * the I/O between them.
 */
import { randomUUID } from "node:crypto";
import type { CallToolResult, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import type { BackendContext } from "../common/backend.ts";
import { MAX_COMMAND_LENGTH, splitCommandLine } from "./command-line.ts";
import type { Mcp2Config } from "./config.ts";
import type { Execution } from "./docker-cli.ts";
import type { DockerEngine } from "./engine.ts";
import { SUBCOMMAND_NAMES } from "./flags.ts";
import { withAgentNames, withoutForeignHolder } from "./names.ts";
import { CappedOutput, type CappedText } from "./output.ts";
import { resolveOwned } from "./ownership.ts";
import { describeImages, type Plan, planCommand } from "./plan.ts";
import { EXECUTION_SCHEMA, executionResult, failed, refused } from "./results.ts";
import { renderTemplate, type ViewValue } from "./template.ts";
import { infoText, infoView, type ViewName, versionText } from "./views.ts";

export interface RunDockerDeps {
  config: Mcp2Config;
  engine: DockerEngine;
  /** `run`s in flight per agent, shared by every request this process serves. */
  starting: Map<string, number>;
}

/** Registers `run_docker(command)` on a per-request server. */
export function registerRunDocker(server: McpServer, ctx: BackendContext, deps: RunDockerDeps) {
  server.registerTool(
    "run_docker",
    {
      title: "Run a docker command",
      description: describeTool(deps.config),
      inputSchema: z.object({
        command: z
          .string()
          .min(1)
          .max(MAX_COMMAND_LENGTH)
          .describe(
            'One docker command line, e.g. "run --rm mcpcp/busybox echo hi" or "docker ps"',
          ),
      }),
      outputSchema: EXECUTION_SCHEMA,
      annotations: { destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async ({ command }, extra) => runDocker(command, ctx.agent, deps, extra.mcpReq.signal),
  );
}

/** Runs one command line for `agent`; every outcome is a tool result. */
export async function runDocker(
  command: string,
  agent: string | undefined,
  deps: RunDockerDeps,
  signal?: AbortSignal,
): Promise<CallToolResult> {
  const { config, engine } = deps;
  const split = splitCommandLine(command);
  if (!split.ok) return refused(split.reason);
  const planned = planCommand(split.argv, {
    config,
    agent,
    runId: randomUUID(),
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  if (!planned.ok) return refused(planned.reason);
  const plan = planned.plan;

  const reachable = await engine.reachable();
  if (!reachable.ok) return failed(reachable.reason);

  if (plan.kind === "direct") {
    return finish(await engine.exec(plan.argv, { signal }), deps, { agent });
  }
  if (plan.kind === "view") return answerView(plan, agent, deps);

  // A tagless allow-list entry admits the tags the engine has, not whatever a registry offers.
  // `--pull=never` would stop the pull anyway; asking first gives the agent the reason.
  if (plan.kind === "run" && plan.localImage !== undefined) {
    if (!(await engine.hasImage(plan.localImage))) {
      const now = await engine.reachable(true);
      if (!now.ok) return failed(now.reason);
      return refused(
        `the image "${plan.localImage}" is not on this Docker engine, and mcp2 never pulls. ` +
          `Allowed images: ${describeImages(config)}`,
      );
    }
  }

  // planCommand has refused every command of these kinds without a valid agent.
  const owner = agent as string;
  const listed = await engine.listOwned(owner);
  if (!listed.ok) {
    // A listing that ran but was cut short cannot be trusted to resolve anything: fail closed.
    return listed.execution.exitCode === 0
      ? failed("mcp2 could not list your containers completely; remove some and try again")
      : finish(listed.execution, deps, { agent });
  }

  if (plan.kind === "owned") {
    const resolved = resolveOwned(plan.refs, listed.owned);
    if (!resolved.ok) return failed(`Error: ${resolved.reason}`);
    return finish(
      await engine.exec([...plan.head, ...resolved.ids, ...plan.tail], { signal }),
      deps,
      { agent },
    );
  }

  // A hostile agent could start containers faster than they end: count what it has, plus the runs
  // it has in flight (not listed yet), against the limit.
  const starting = deps.starting.get(owner) ?? 0;
  if (listed.owned.length + starting >= config.maxContainersPerAgent) {
    return refused(
      `you have ${listed.owned.length + starting} containers and the limit is ` +
        `${config.maxContainersPerAgent}; remove some with "docker rm -f NAME" (see "docker ps -a")`,
    );
  }
  deps.starting.set(owner, starting + 1);
  try {
    const execution = await engine.exec(plan.argv, { signal });
    // The CLI was killed, but the container it asked for runs on without it.
    const killed = execution.ending === "timed-out" || execution.ending === "aborted";
    if (killed) await engine.removeRun(plan.runId);
    return finish(await withoutForeignConflict(execution, owner, engine), deps, {
      agent,
      removedContainer: killed,
    });
  } finally {
    const left = (deps.starting.get(owner) ?? 1) - 1;
    if (left > 0) deps.starting.set(owner, left);
    else deps.starting.delete(owner);
  }
}

/**
 * `docker info` or `docker version` answered by mcp2 from what concerns the caller (views.ts);
 * the engine's own answers, which describe the host and every agent, are never run for it.
 */
async function answerView(
  plan: Extract<Plan, { kind: "view" }>,
  agent: string | undefined,
  { config, engine }: RunDockerDeps,
): Promise<CallToolResult> {
  const started = performance.now();
  const answer = await viewOf(plan.view, agent, engine);
  if (answer === undefined) {
    // What mcp2 asked the engine for itself is not the agent's to read, so only the reason.
    const now = await engine.reachable(true);
    return failed(
      now.ok ? `mcp2 could not read what docker ${plan.view} shows; try again` : now.reason,
    );
  }
  const stdout = new CappedOutput(config.outputLimitBytes);
  stdout.push(Buffer.from(plan.format ? renderTemplate(plan.format, answer.view) : answer.text));
  const nothing: CappedText = { text: "", truncated: false, droppedBytes: 0 };
  return executionResult(
    {
      argv: plan.argv,
      exitCode: 0,
      stdout: stdout.result(),
      stderr: nothing,
      durationMs: Math.round(performance.now() - started),
      ending: "exited",
    },
    { timeoutSeconds: config.timeoutSeconds, removedContainer: false, answeredByMcp2: true },
  );
}

/** The view and its plain text, from the engine's facts; undefined when they cannot be read. */
async function viewOf(
  name: ViewName,
  agent: string | undefined,
  engine: DockerEngine,
): Promise<{ view: ViewValue; text: string } | undefined> {
  if (name === "version") {
    const version = await engine.version();
    return version.ok ? { view: version.version, text: versionText(version.version) } : undefined;
  }
  // planCommand has refused info without a valid agent.
  const [version, listed, images] = await Promise.all([
    engine.version(),
    engine.listOwned(agent as string),
    engine.allowedImageIds(),
  ]);
  if (!version.ok || !listed.ok || !images.ok) return undefined;
  const info = infoView(listed.owned, images.ids, version.version);
  return { view: info, text: infoText(info) };
}

/**
 * A failed `run`'s stderr without the ID of a container that holds its name and is not the
 * caller's (names.ts). Listed afresh: the holder may be the caller's own, started meanwhile.
 */
async function withoutForeignConflict(
  execution: Execution,
  owner: string,
  engine: DockerEngine,
): Promise<Execution> {
  if (execution.exitCode === 0 || !execution.stderr.text.includes("already in use by container")) {
    return execution;
  }
  const listed = await engine.listOwned(owner);
  const ownIds = listed.ok ? listed.owned.map((c) => c.id) : [];
  const text = withoutForeignHolder(execution.stderr.text, ownIds);
  return { ...execution, stderr: { ...execution.stderr, text } };
}

/**
 * What the agent sees of `execution`, with container names in its own namespace (names.ts): in the
 * argv, in errors, and in the listings `ps` and `inspect` print. What a container itself prints
 * (`run`, `logs`, `exec` stdout) is left as it is.
 */
function inAgentNames(execution: Execution, agent: string): Execution {
  const rename = (stream: CappedText) => ({ ...stream, text: withAgentNames(agent, stream.text) });
  const listing = execution.argv[0] === "ps" || execution.argv[0] === "inspect";
  return {
    ...execution,
    argv: execution.argv.map((arg) => withAgentNames(agent, arg)),
    stdout: listing ? rename(execution.stdout) : execution.stdout,
    stderr: rename(execution.stderr),
  };
}

/** The result of a command that ran (or tried to), told apart from the engine going away. */
async function finish(
  ran: Execution,
  { config, engine }: RunDockerDeps,
  { agent, removedContainer = false }: { agent?: string; removedContainer?: boolean } = {},
): Promise<CallToolResult> {
  const execution = agent === undefined ? ran : inAgentNames(ran, agent);
  if (execution.ending === "not-started") {
    const now = await engine.reachable(true);
    return failed(now.ok ? `the docker CLI could not start: ${execution.startError}` : now.reason);
  }
  // A failure may be the engine going away mid-call: say so rather than show a bare exit code.
  if (execution.ending === "exited" && execution.exitCode !== 0) {
    const now = await engine.reachable(true);
    if (!now.ok) return failed(now.reason);
  }
  return executionResult(execution, { timeoutSeconds: config.timeoutSeconds, removedContainer });
}

/** The tool description a model reads: what is allowed here, with this server's limits. */
function describeTool(config: Mcp2Config): string {
  return [
    "Run one docker command against this host's Docker engine and get its exit code, stdout,",
    "stderr and duration. The leading `docker` is optional. No shell is involved: pipes,",
    "redirections, `;`, `&&`, `$VAR`, `$(...)`, backticks and globs are refused; quote arguments",
    "as in a POSIX shell.",
    `Subcommands: ${SUBCOMMAND_NAMES.join(", ")}; flags outside each one's allow-list are refused.`,
    `Images you may run: ${describeImages(config)}; nothing is ever pulled.`,
    `Every container gets --network ${config.network}, --memory ${config.memory},`,
    `--cpus ${config.cpus}, --pids-limit ${config.pidsLimit}, no extra privileges, devices or`,
    "host mounts. Foreground runs are removed when they end (--rm);",
    `a command is killed after ${config.timeoutSeconds} s, and its container with it;`,
    `detached containers (-d) are killed and removed after ${config.detachedTimeoutSeconds} s.`,
    "You see and act only on containers you started: ps, logs, inspect, stop, rm, exec;",
    "container names are yours alone (another agent's web is not yours and never clashes).",
    "info and version are answered by mcp2: your containers, your images, the versions.",
    `At most ${config.maxContainersPerAgent} containers at a time.`,
  ].join(" ");
}
