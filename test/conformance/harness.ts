/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16, a pinned
 * devDependency) against one MCP endpoint, as its CLI does in an SDK's CI, and reads the results
 * back as plain data, so a test can require "every check passes" and say which one did not.
 *
 * The CLI runs as a child process on Node 22 (`node_modules/.bin/node`; it needs 22, whatever Node
 * runs the tests): `server --url <url> --output-dir <dir> [--suite <suite>]
 * [--expected-failures <yaml>]`. For each scenario it writes
 * `<dir>/server-<scenario>-<ISO time with : and . as ->/checks.json`, an array of checks
 * `{ id, name, description, status, errorMessage?, details? }`. The harness keeps what the CLI
 * printed in `<dir>/cli.log`.
 *
 * With a `token`, the CLI talks to a local forwarder (`token-forwarder.ts`) that adds
 * `Authorization: Bearer <token>` and changes nothing else: it stands in for the agent's
 * credentials only, because the CLI cannot send them.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { startTokenForwarder } from "./token-forwarder.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const NODE_22 = join(ROOT, "node_modules", ".bin", "node");
const CLI = join(ROOT, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js");
/** A whole run takes seconds; this only bounds a hung one. */
const DEFAULT_TIMEOUT_MS = 300_000;

/** The suites `conformance server --suite` knows: "active" is its default, "pending" the rest. */
export type Suite = "active" | "all" | "pending";

export interface ConformanceOptions {
  /** The MCP endpoint to test. */
  url: string;
  /** When given, every request carries `Authorization: Bearer <token>` (through a forwarder). */
  token?: string;
  /** Where the CLI writes its results; created if missing, and must hold no earlier run. */
  outputDir: string;
  /** A YAML file in the CLI's `--expected-failures` format (`server: [scenario, ...]`). */
  expectedFailures?: string;
  /** Which scenarios; the CLI's default, "active", when not given. */
  suite?: Suite;
  timeoutMs?: number;
}

/** One check of one scenario. */
export interface ConformanceCheck {
  scenario: string;
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING";
  description: string;
  errorMessage?: string;
}

export interface ConformanceRun {
  /**
   * Every check that judges something: SUCCESS, FAILURE or WARNING. INFO entries are left out;
   * they are the suite's trace (requests sent, SSE events seen), not verdicts. A WARNING counts
   * as a check that did not pass, as the CLI's own baseline rule has it (a scenario with a
   * warning fails); the CLI's "Passed: x/y" line instead leaves warnings out of y.
   */
  checks: ConformanceCheck[];
  /** Checks with status SUCCESS. */
  passed: number;
  /** All checks (SUCCESS + FAILURE + WARNING). */
  total: number;
  /** Scenarios the CLI ran, in its order. */
  scenarios: string[];
  /** Scenarios with a FAILURE or a WARNING: the CLI's definition of a failed scenario. */
  failedScenarios: string[];
  /** Failed scenarios the expected-failures file does not list. */
  unexpectedFailures: string[];
  /** Listed scenarios that ran and passed: the CLI fails the run for these too. */
  staleExpectedFailures: string[];
  /** The CLI's exit code: 0 when every failure was expected and no entry is stale. */
  exitCode: number | null;
  durationMs: number;
  outputDir: string;
  /** The CLI's output (stdout and stderr, colour codes removed). */
  logFile: string;
}

const CheckFileSchema = z.array(
  z.looseObject({
    id: z.string(),
    description: z.string().default(""),
    status: z.enum(["SUCCESS", "FAILURE", "WARNING", "INFO"]),
    errorMessage: z.string().optional(),
  }),
);

const ExpectedFailuresSchema = z
  .object({ server: z.array(z.string()).default([]) })
  .loose()
  .nullable()
  .transform((file) => file?.server ?? []);

/** Scenario names of the server side listed in an expected-failures YAML file. */
export async function readExpectedFailures(file: string): Promise<string[]> {
  return ExpectedFailuresSchema.parse(parseYaml(await readFile(file, "utf8")));
}

/** Runs the suite against `url` and resolves with every scenario's checks. */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceRun> {
  const { outputDir } = options;
  for (const needed of [NODE_22, CLI]) {
    if (!existsSync(needed)) throw new Error(`${needed} is missing: run npm ci`);
  }
  await mkdir(outputDir, { recursive: true });
  if ((await readdir(outputDir)).some((name) => name.startsWith("server-"))) {
    throw new Error(`${outputDir} already holds conformance results: give each run a fresh one`);
  }
  const expected = options.expectedFailures
    ? await readExpectedFailures(options.expectedFailures)
    : [];

  const forwarder = options.token
    ? await startTokenForwarder(new URL(options.url), options.token)
    : undefined;
  const args = [CLI, "server", "--url", forwarder?.url ?? options.url, "--output-dir", outputDir];
  if (options.suite) args.push("--suite", options.suite);
  if (options.expectedFailures) args.push("--expected-failures", options.expectedFailures);

  const logFile = join(outputDir, "cli.log");
  const began = performance.now();
  let output: string;
  let exitCode: number | null;
  try {
    ({ output, exitCode } = await runCli(args, options.timeoutMs ?? DEFAULT_TIMEOUT_MS));
  } catch (error) {
    const partial = (error as { output?: string }).output ?? "";
    await writeFile(logFile, stripAnsi(partial));
    throw new Error(`${(error as Error).message}; its output so far is in ${logFile}`);
  } finally {
    await forwarder?.close();
  }
  const durationMs = performance.now() - began;
  await writeFile(logFile, stripAnsi(output));

  // The CLI announces each scenario before it runs it; one that threw wrote no checks.json.
  const scenarios = [...output.matchAll(/^=== Running scenario: (\S+) ===$/gm)].map(
    (m) => m[1] as string,
  );
  if (scenarios.length === 0) {
    throw new Error(`The conformance CLI ran no scenario (exit ${exitCode}); see ${logFile}`);
  }
  const checks: ConformanceCheck[] = [];
  const resultDirs = await readdir(outputDir);
  for (const scenario of scenarios) {
    const dir = resultDirs.find((name) => resultDirScenario(name) === scenario);
    if (dir === undefined) {
      checks.push({
        scenario,
        id: "checks-json-missing",
        status: "FAILURE",
        description: "The scenario left results",
        errorMessage: `The CLI wrote no checks.json for ${scenario} (it threw); see ${logFile}`,
      });
      continue;
    }
    const file = join(outputDir, dir, "checks.json");
    for (const check of CheckFileSchema.parse(JSON.parse(await readFile(file, "utf8")))) {
      if (check.status === "INFO") continue;
      checks.push({
        scenario,
        id: check.id,
        status: check.status,
        description: check.description,
        ...(check.errorMessage === undefined ? {} : { errorMessage: check.errorMessage }),
      });
    }
  }

  const failedScenarios = scenarios.filter((s) =>
    checks.some((c) => c.scenario === s && c.status !== "SUCCESS"),
  );
  return {
    checks,
    passed: checks.filter((c) => c.status === "SUCCESS").length,
    total: checks.length,
    scenarios,
    failedScenarios,
    unexpectedFailures: failedScenarios.filter((s) => !expected.includes(s)),
    staleExpectedFailures: expected.filter(
      (s) => scenarios.includes(s) && !failedScenarios.includes(s),
    ),
    exitCode,
    durationMs,
    outputDir,
    logFile,
  };
}

/** The scenario of a result directory `server-<scenario>-2026-01-02T03-04-05-678Z`. */
function resultDirScenario(name: string): string | undefined {
  return /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/.exec(name)?.[1];
}

function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the colour codes
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** Runs the CLI on Node 22; resolves with its interleaved output and exit code. */
function runCli(
  args: string[],
  timeoutMs: number,
): Promise<{ output: string; exitCode: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE_22, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        Object.assign(new Error(`The conformance CLI did not finish in ${timeoutMs} ms`), {
          output,
        }),
      );
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(Object.assign(error, { output }));
    });
    child.once("close", (exitCode) => {
      clearTimeout(timer);
      resolve({ output, exitCode });
    });
  });
}
