/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16), run by its own
 * CLI against our reference backend (`test/conformance/reference-server.ts`): first directly,
 * which shows the backend and the harness are sound; then, once the gateway serves each backend
 * at `/servers/<id>/mcp` under its own names, through the gateway, where the same checks must
 * pass. A check that fails there and not here is something the gateway broke. The gateway is
 * the system `npm start` runs, with the reference server added the documented way
 * (`EXTRA_BACKENDS` and a policy granting it).
 *
 * Every check must pass except the scenarios in `test/conformance/expected-failures.yaml`, each
 * of which must still fail (the CLI's baseline rule). The CLI's output stays in
 * test-artifacts/conformance/<case>/: `cli.log` and each scenario's `server-<scenario>-*`
 * `/checks.json`; a failure names the directory.
 *
 * It runs `--suite all`, not the CLI's default "active" suite: the two pending scenarios check
 * what a gateway could break (json-schema-2020-12: tool schemas keep `$schema`, `$defs`,
 * `additionalProperties`; server-sse-polling: a stream closed mid-call resumes with
 * `Last-Event-ID`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { mintToken } from "../../keys/mint.ts";
import { type ConformanceRun, runConformance } from "../conformance/harness.ts";
import { startReferenceServer } from "../conformance/reference-server.ts";
import { type Launched, launch } from "./launcher.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ARTIFACTS = join(ROOT, "test-artifacts", "conformance");
const EXPECTED_FAILURES = join(ROOT, "test", "conformance", "expected-failures.yaml");
/** One run takes about 5 s; the CLI's own per-request timeouts are far below this. */
const RUN_TIMEOUT_MS = 120_000;

/** A fresh directory for one case's CLI output. */
async function artifactDir(name: string): Promise<string> {
  const dir = join(ARTIFACTS, name);
  await rm(dir, { recursive: true, force: true });
  return dir;
}

/** What is wrong with a run, one line each; empty when it passed as the baseline expects. */
function problems(run: ConformanceRun): string[] {
  const lines = run.checks
    .filter((c) => c.status !== "SUCCESS" && run.unexpectedFailures.includes(c.scenario))
    .map((c) => `${c.scenario} / ${c.id}: ${c.status} ${c.errorMessage ?? c.description}`);
  for (const scenario of run.staleExpectedFailures) {
    lines.push(`${scenario} passes now: remove it from test/conformance/expected-failures.yaml`);
  }
  if (lines.length === 0 && run.exitCode !== 0) {
    lines.push(`the CLI exited ${run.exitCode} although every check it wrote is as expected`);
  }
  return lines;
}

/** The assertion message: what failed, and where the CLI's whole output is. */
function report(run: ConformanceRun): string {
  const where = relative(ROOT, run.outputDir);
  return [
    `conformance: ${run.passed}/${run.total} checks passed in ${run.scenarios.length} scenarios;`,
    ...problems(run).map((line) => `  - ${line}`),
    `the CLI's output is in ${where}/ (cli.log, server-<scenario>-*/checks.json)`,
  ].join("\n");
}

describe("the MCP conformance suite", () => {
  it(
    "passes directly against the reference server, but for the expected failures",
    async () => {
      const server = await startReferenceServer();
      try {
        const run = await runConformance({
          url: server.url,
          outputDir: await artifactDir("direct"),
          expectedFailures: EXPECTED_FAILURES,
          suite: "all",
          timeoutMs: RUN_TIMEOUT_MS,
        });
        expect(problems(run), report(run)).toEqual([]);
        expect(run.exitCode, report(run)).toBe(0);
        expect(run.total, report(run)).toBeGreaterThan(0);
      } finally {
        await server.close();
      }
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    "through the gateway's /servers/<id>/mcp, the same checks pass",
    async () => {
      const server = await startReferenceServer();
      const dir = mkdtempSync(join(tmpdir(), "mcpcp-conformance-"));
      const policy = join(dir, "policy.json");
      writeFileSync(policy, JSON.stringify({ conformance: { ref: "*" } }));
      let system: Launched | undefined;
      try {
        const direct = await runConformance({
          url: server.url,
          outputDir: await artifactDir("direct-for-gateway"),
          expectedFailures: EXPECTED_FAILURES,
          suite: "all",
          timeoutMs: RUN_TIMEOUT_MS,
        });
        system = await launch({
          env: {
            EXTRA_BACKENDS: JSON.stringify([{ id: "ref", url: server.url, identity: "none" }]),
            MCPCP_POLICY: policy,
          },
        });
        // localhost, not 127.0.0.1: the suite's DNS rebinding check needs a loopback name.
        const door = new URL("/servers/ref/mcp", system.proxyUrl);
        door.hostname = "localhost";
        const run = await runConformance({
          url: door.href,
          token: await mintToken({ agent: "conformance" }),
          outputDir: await artifactDir("gateway"),
          expectedFailures: EXPECTED_FAILURES,
          suite: "all",
          timeoutMs: RUN_TIMEOUT_MS,
        });
        expect(problems(run), report(run)).toEqual([]);
        const outcome = (r: ConformanceRun) =>
          r.checks.map((c) => `${c.scenario} / ${c.id}: ${c.status}`).sort();
        expect(outcome(run), report(run)).toEqual(outcome(direct));
        console.log(
          `conformance through the door: ${run.passed}/${run.total}; direct ${direct.passed}/${direct.total}`,
        );
      } finally {
        if (system?.child.exitCode === null) await system.stop();
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    RUN_TIMEOUT_MS * 2 + 180_000,
  );
});
