/**
 * The real sandbox, driven directly in Node (no HTTP): bwrap, prlimit and setpriv must be
 * installed (`bash .ci/sandbox.sh setup`). A few fast cases; the escape attempts are in
 * test/e2e/python.e2e.test.ts, through the gateway.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CallToolResult } from "@modelcontextprotocol/server";
import { beforeAll, describe, expect, it } from "vitest";
import { type Mcp3Config, parseMcp3Config } from "../../local-backends/mcp3/config.ts";
import { createPythonSandbox, type PythonSandbox } from "../../local-backends/mcp3/sandbox.ts";
import { processesOf } from "../support/processes.ts";

// Not mcp3's default range: the end-to-end suite, which may run at the same time, counts the
// processes of its own sandbox users and must not see these.
const SANDBOX_UID = 71000;

function config(env: NodeJS.ProcessEnv = {}): Mcp3Config {
  const id = String(SANDBOX_UID);
  const parsed = parseMcp3Config({ MCP3_SANDBOX_UID: id, MCP3_SANDBOX_GID: id, ...env });
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.config;
}

/** Host processes of the sandbox users of the first `slots` slots. */
async function processesOfSlots(slots: number): Promise<number[]> {
  const each = await Promise.all(
    Array.from({ length: slots }, (_, slot) => processesOf(SANDBOX_UID + slot)),
  );
  return each.flat();
}

function text(result: CallToolResult): string {
  return result.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}

function facts(result: CallToolResult) {
  return result.structuredContent as {
    exit_code: number | null;
    stop_reason: string | null;
    stdout: string;
    stderr: string;
    stdout_truncated: boolean;
    duration_ms: number;
  };
}

// As root each slot runs as SANDBOX_UID + slot and leftovers can be counted; otherwise as us.
const ROOT = process.getuid?.() === 0;

describe("the real sandbox", () => {
  let sandbox: PythonSandbox;
  let before: number[];

  beforeAll(async () => {
    before = ROOT ? await processesOfSlots(4) : [];
    sandbox = createPythonSandbox(config({ MCP3_CONCURRENCY: "4" }));
    const verdict = await sandbox.ready();
    if (!verdict.ok) {
      throw new Error(
        `no working sandbox here (${verdict.reason}); run: bash .ci/sandbox.sh setup`,
      );
    }
  }, 20_000);

  it("passes its start-up probe and reports healthy", async () => {
    expect(await sandbox.health()).toEqual({ status: "ok" });
  });

  it("runs print(1)", async () => {
    const result = await sandbox.run("print(1)");
    expect(result.isError).toBeUndefined();
    expect(facts(result)).toMatchObject({ exit_code: 0, stdout: "1\n", stderr: "" });
  });

  it("returns a failing program's traceback as a tool error", async () => {
    const result = await sandbox.run("def f():\n    return 1 / 0\nf()\n");
    expect(result.isError).toBe(true);
    expect(facts(result).exit_code).toBe(1);
    expect(facts(result).stderr).toContain('File "/code/main.py", line 2, in f');
    expect(text(result)).toMatch(/ZeroDivisionError: division by zero/);
  });

  it("kills a program at its wall-clock limit, with the setsid child it started", async () => {
    const code = [
      "import subprocess, time",
      'subprocess.Popen(["sleep", "60"], start_new_session=True)',
      'print("started", flush=True)',
      "time.sleep(60)",
    ].join("\n");
    const result = await sandbox.run(code, { timeoutSeconds: 1 });
    expect(result.isError).toBe(true);
    expect(facts(result)).toMatchObject({ stop_reason: "timeout", stdout: "started\n" });
    expect(facts(result).duration_ms).toBeLessThan(5000);
    if (ROOT) {
      const leftovers = (await processesOfSlots(4)).filter((pid) => !before.includes(pid));
      expect(leftovers).toEqual([]);
    }
  });

  it("stops a flood of output at the cap, with a visible marker", async () => {
    const result = await sandbox.run('while True:\n    print("x" * 1000)\n');
    expect(facts(result)).toMatchObject({ stop_reason: "output_limit", stdout_truncated: true });
    expect(facts(result).stdout).toMatch(/\[… stdout truncated: \d+ more bytes not shown/);
    expect(Buffer.byteLength(facts(result).stdout)).toBeLessThan(65536 + 200);
  });

  it("kills a running program when its call is cancelled", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const result = await sandbox.run("import time\ntime.sleep(30)", {
      timeoutSeconds: 8,
      signal: controller.signal,
    });
    expect(facts(result).stop_reason).toBe("cancelled");
    expect(facts(result).duration_ms).toBeLessThan(3000);
  });
});

/** Forks until its process limit refuses, then holds every process it got until killed. */
const FORK_TO_THE_LIMIT = `
import os, time
held = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        held += 1
except BlockingIOError:
    print("held", held, "then", "BlockingIOError", flush=True)
time.sleep(60)
`;

/** Forks four children that exit at once, and waits for them. */
const FORK_FOUR = `
import os
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("forked 4")
`;

describe("limits per run", () => {
  it.skipIf(!ROOT)(
    "a run that forks up to its process limit leaves another agent's concurrent run able to fork",
    async () => {
      const sandbox = createPythonSandbox(config({ MCP3_CONCURRENCY: "2" }));
      expect((await sandbox.ready()).ok).toBe(true);
      const hogCall = new AbortController();
      const hog = sandbox.run(FORK_TO_THE_LIMIT, {
        agent: "hog",
        timeoutSeconds: 8,
        signal: hogCall.signal,
      });
      // The hog holds its whole process limit (bwrap's monitor, the program, its children).
      await expect
        .poll(async () => (await processesOfSlots(2)).length, { timeout: 5000, interval: 50 })
        .toBeGreaterThanOrEqual(config().limits.maxProcesses);

      const other = await sandbox.run(FORK_FOUR, { agent: "other" });
      hogCall.abort();
      expect(facts(other)).toMatchObject({ exit_code: 0, stdout: "forked 4\n", stderr: "" });
      expect(facts(await hog)).toMatchObject({
        stop_reason: "cancelled",
        stdout: expect.stringMatching(/^held \d+ then BlockingIOError\n$/),
      });
    },
    20_000,
  );
});

describe("a queue fair across agents", () => {
  it("starts another agent's short run while one agent holds four sleeping runs", async () => {
    const sandbox = createPythonSandbox(config({ MCP3_CONCURRENCY: "2" }));
    expect((await sandbox.ready()).ok).toBe(true);
    const sleepersCall = new AbortController();
    const settled: number[] = [];
    const sleepers = [0, 1, 2, 3].map((n) =>
      sandbox
        .run("import time\ntime.sleep(30)", {
          agent: "sleeper",
          timeoutSeconds: 8,
          signal: sleepersCall.signal,
        })
        .finally(() => settled.push(n)),
    );

    const short = await sandbox.run("print('my turn')", { agent: "other" });
    // It ran and finished while every sleeper was still asleep or waiting.
    expect(facts(short)).toMatchObject({ exit_code: 0, stdout: "my turn\n" });
    expect(settled).toEqual([]);

    sleepersCall.abort();
    const results = await Promise.all(sleepers);
    // One agent held one of the two slots; its other calls waited and never started.
    expect(results.map((r) => facts(r)?.stop_reason ?? text(r))).toEqual([
      "cancelled",
      "The call was cancelled before the program started.",
      "The call was cancelled before the program started.",
      "The call was cancelled before the program started.",
    ]);
  }, 30_000);
});

describe("bounded concurrency", () => {
  it("refuses a call at once when every slot is busy and the queue is full", async () => {
    const sandbox = createPythonSandbox(config({ MCP3_CONCURRENCY: "1", MCP3_QUEUE: "0" }));
    expect((await sandbox.ready()).ok).toBe(true);
    const slow = sandbox.run("import time\ntime.sleep(1)\nprint('slow done')");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = await sandbox.run("print('too many')");
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/busy: 1 programs are running and 0 are waiting/);
    expect(facts(await slow).stdout).toBe("slow done\n");
    expect(facts(await sandbox.run("print('next')")).stdout).toBe("next\n");
  });
});

describe("an agent's share of the queue", () => {
  it("refuses an agent's call past its share, saying so, and queues another agent's", async () => {
    const sandbox = createPythonSandbox(
      config({ MCP3_CONCURRENCY: "1", MCP3_QUEUE: "2", MCP3_QUEUE_PER_AGENT: "1" }),
    );
    expect((await sandbox.ready()).ok).toBe(true);
    const calls = new AbortController();
    const options = { agent: "busy", timeoutSeconds: 8, signal: calls.signal };
    const running = sandbox.run("import time\ntime.sleep(30)", options);
    const waiting = sandbox.run("print('second')", options);
    const refused = await sandbox.run("print('third')", options);
    expect(refused.isError).toBe(true);
    expect(text(refused)).toBe(
      "mcp3 is busy with your programs: you already have 1 waiting for a slot, the most one " +
        "agent may have waiting. Try again when one has finished.",
    );
    const other = sandbox.run("print('other')", { agent: "other" });
    calls.abort();
    expect(facts(await running).stop_reason).toBe("cancelled");
    expect(text(await waiting)).toBe("The call was cancelled before the program started.");
    expect(facts(await other).stdout).toBe("other\n");
  });
});

describe("failing closed", () => {
  it("reports degraded health and refuses to run anything when bwrap is missing", async () => {
    const marker = join(tmpdir(), `mcp3-unsandboxed-${process.pid}-${Date.now()}`);
    const sandbox = createPythonSandbox(config({ MCP3_BWRAP: "/nonexistent/bwrap" }));
    const verdict = await sandbox.ready();
    expect(verdict.ok).toBe(false);
    const health = await sandbox.health();
    expect(health).toMatchObject({ status: "degraded" });
    expect(health.status === "degraded" && health.reason).toMatch(/sandbox probe failed/);

    const result = await sandbox.run(`open(${JSON.stringify(marker)}, "w").write("ran")`);
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(
      /^run_python_code is unavailable: .*never run outside the sandbox/,
    );
    expect(existsSync(marker)).toBe(false);
  });

  it.skipIf(!ROOT)("refuses to run when a slot's uid belongs to a user of the host", async () => {
    // Slots 0 and 1 would run as 65533 and 65534, and 65534 is nobody.
    const sandbox = createPythonSandbox(config({ MCP3_SANDBOX_UID: "65533" }));
    const verdict = await sandbox.ready();
    expect(!verdict.ok && verdict.reason).toMatch(
      /^sandbox probe failed: MCP3_SANDBOX_UID's range 65533-65534 .* the user nobody in \/etc\/passwd$/,
    );
    expect(text(await sandbox.run("print(1)"))).toMatch(/^run_python_code is unavailable/);
  });
});
