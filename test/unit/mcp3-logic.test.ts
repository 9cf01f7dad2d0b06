/**
 * mcp3's pure parts: configuration, the sandbox command line, the bounded pool, and how a run's
 * outcome becomes a tool result. Nothing here starts a process.
 */
import { describe, expect, it } from "vitest";
import { type Mcp3Config, parseMcp3Config } from "../../local-backends/mcp3/config.ts";
import {
  interpret,
  type RawOutcome,
  shownOutput,
  signalOf,
  toToolResult,
  utf8Prefix,
} from "../../local-backends/mcp3/outcome.ts";
import {
  type Admission,
  createPool,
  type Pool,
  type PoolLimits,
} from "../../local-backends/mcp3/pool.ts";
import {
  bwrapArgs,
  type HostLayout,
  prlimitArgs,
  SANDBOX,
  type SandboxPlan,
  sandboxCommand,
  setprivArgs,
} from "../../local-backends/mcp3/sandbox-argv.ts";
import { checkSlotUids, slotUid } from "../../local-backends/mcp3/sandbox-users.ts";

function defaults(): Mcp3Config {
  const parsed = parseMcp3Config({});
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.config;
}

const MERGED_USR: HostLayout = {
  entries: [
    { path: "/bin", symlinkTo: "usr/bin" },
    { path: "/lib", symlinkTo: "usr/lib" },
    { path: "/lib64", symlinkTo: "usr/lib64" },
  ],
};

function plan(overrides: Partial<SandboxPlan> = {}): SandboxPlan {
  const config = defaults();
  return {
    python: config.python,
    bwrap: config.bwrap,
    prlimit: config.prlimit,
    setpriv: config.setpriv,
    limits: config.limits,
    timeoutSeconds: 5,
    dropTo: { uid: 65534, gid: 65534 },
    layout: MERGED_USR,
    ...overrides,
  };
}

/** The values that follow each occurrence of `flag` in `args`. */
function valuesOf(args: string[], flag: string, count = 1): string[][] {
  return args.flatMap((arg, i) => (arg === flag ? [args.slice(i + 1, i + 1 + count)] : []));
}

describe("parseMcp3Config", () => {
  it("has safe defaults: 5 s of 8, 256 MiB, 16 processes, 2 running (1 per agent), 8 waiting (4 per agent)", () => {
    const config = defaults();
    expect(config).toMatchObject({
      defaultTimeoutSeconds: 5,
      maxTimeoutSeconds: 8,
      concurrency: 2,
      queueLimit: 8,
      concurrencyPerAgent: 1,
      queuePerAgent: 4,
      python: "/usr/bin/python3",
      bwrap: "/usr/bin/bwrap",
      uid: 70000,
      gid: 65534,
    });
    expect(config.limits).toEqual({
      memoryBytes: 256 * 1024 * 1024,
      maxProcesses: 16,
      maxOpenFiles: 64,
      fileSizeBytes: 16 * 1024 * 1024,
      tmpfsBytes: 32 * 1024 * 1024,
      maxOutputBytes: 65536,
    });
  });

  it("reads every variable", () => {
    const parsed = parseMcp3Config({
      MCP3_TIMEOUT_SECONDS: "3",
      MCP3_MAX_TIMEOUT_SECONDS: "30",
      MCP3_MEMORY_MB: "128",
      MCP3_MAX_PROCESSES: "8",
      MCP3_MAX_OPEN_FILES: "32",
      MCP3_FILE_SIZE_MB: "2",
      MCP3_TMPFS_MB: "4",
      MCP3_MAX_OUTPUT_BYTES: "2048",
      MCP3_MAX_CODE_BYTES: "4096",
      MCP3_CONCURRENCY: "4",
      MCP3_QUEUE: "6",
      MCP3_CONCURRENCY_PER_AGENT: "3",
      MCP3_QUEUE_PER_AGENT: "6",
      MCP3_SANDBOX_UID: "1234",
      MCP3_SANDBOX_GID: "1235",
      MCP3_PYTHON: "/usr/bin/python3.11",
      MCP3_BWRAP: "/opt/bwrap",
    });
    expect(parsed.ok && parsed.config).toMatchObject({
      defaultTimeoutSeconds: 3,
      maxTimeoutSeconds: 30,
      maxCodeBytes: 4096,
      concurrency: 4,
      queueLimit: 6,
      concurrencyPerAgent: 3,
      queuePerAgent: 6,
      uid: 1234,
      gid: 1235,
      python: "/usr/bin/python3.11",
      bwrap: "/opt/bwrap",
      limits: { memoryBytes: 128 * 1024 * 1024, maxProcesses: 8, maxOutputBytes: 2048 },
    });
  });

  it.each([
    ["MCP3_TIMEOUT_SECONDS", "soon"],
    ["MCP3_TIMEOUT_SECONDS", "2.5"],
    ["MCP3_MEMORY_MB", "1"],
    ["MCP3_MAX_PROCESSES", "-1"],
    ["MCP3_CONCURRENCY", "0"],
    ["MCP3_SANDBOX_UID", "0"],
    ["MCP3_PYTHON", "python3"],
    ["MCP3_PYTHON", "/root/.pyenv/shims/python3"],
    ["MCP3_BWRAP", "/usr/bin/../../tmp/bwrap"],
  ])("refuses %s=%s with a message naming it", (name, value) => {
    const parsed = parseMcp3Config({ [name]: value });
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toContain(name);
  });

  it.each([
    [{ MCP3_SANDBOX_UID: "65530", MCP3_CONCURRENCY: "8" }, /65530-65537 must not include 65535/],
    [{ MCP3_SANDBOX_UID: String(2 ** 32 - 2), MCP3_CONCURRENCY: "2" }, /go past 4294967294/],
  ])("refuses a range of slot uids that includes a reserved uid: %o", (env, message) => {
    const parsed = parseMcp3Config(env);
    expect(!parsed.ok && parsed.error).toMatch(/^MCP3_SANDBOX_UID \(\d+\) starts MCP3_CONCURRENCY/);
    expect(!parsed.ok && parsed.error).toMatch(message);
  });

  it("gives one agent half the slots and half the queue by default, rounded up", () => {
    const share = (env: NodeJS.ProcessEnv) => {
      const parsed = parseMcp3Config(env);
      if (!parsed.ok) throw new Error(parsed.error);
      return [parsed.config.concurrencyPerAgent, parsed.config.queuePerAgent];
    };
    expect(share({ MCP3_CONCURRENCY: "1", MCP3_QUEUE: "0" })).toEqual([1, 0]);
    expect(share({ MCP3_CONCURRENCY: "3", MCP3_QUEUE: "5" })).toEqual([2, 3]);
    expect(share({ MCP3_CONCURRENCY: "8", MCP3_QUEUE: "16" })).toEqual([4, 8]);
  });

  it.each([
    [
      "MCP3_CONCURRENCY_PER_AGENT",
      "3",
      /MCP3_CONCURRENCY_PER_AGENT \(3\) must not exceed MCP3_CONCURRENCY \(2\)/,
    ],
    ["MCP3_CONCURRENCY_PER_AGENT", "0", /MCP3_CONCURRENCY_PER_AGENT must be a whole number from 1/],
    ["MCP3_QUEUE_PER_AGENT", "9", /MCP3_QUEUE_PER_AGENT \(9\) must not exceed MCP3_QUEUE \(8\)/],
  ])("refuses %s=%s beyond what the pool has", (name, value, message) => {
    const parsed = parseMcp3Config({ [name]: value });
    expect(!parsed.ok && parsed.error).toMatch(message);
  });

  it("refuses a default timeout above the maximum", () => {
    const parsed = parseMcp3Config({ MCP3_TIMEOUT_SECONDS: "20" });
    expect(!parsed.ok && parsed.error).toMatch(/MCP3_TIMEOUT_SECONDS.*MCP3_MAX_TIMEOUT_SECONDS/);
  });
});

describe("the sandbox command line", () => {
  it("chains prlimit, setpriv, bwrap and python, each exec'ing the next", () => {
    const { command, args } = sandboxCommand(plan());
    expect(command).toBe("/usr/bin/prlimit");
    const separators = args.flatMap((arg, i) => (arg === "--" ? [args[i + 1]] : []));
    expect(separators).toEqual(["/usr/bin/setpriv", "/usr/bin/bwrap", "/usr/bin/python3"]);
    expect(args.slice(-7)).toEqual([
      "/usr/bin/python3",
      "-I",
      "-S",
      "-u",
      "-X",
      "utf8",
      SANDBOX.codePath,
    ]);
  });

  it("limits CPU (SIGXCPU at the timeout, SIGKILL a second later), memory, files, processes", () => {
    const config = defaults();
    expect(prlimitArgs(config.limits, 2.5)).toEqual([
      "--cpu=3:4",
      `--as=${256 * 1024 * 1024}`,
      `--fsize=${16 * 1024 * 1024}`,
      "--nproc=16",
      "--nofile=64",
      "--core=0",
    ]);
  });

  it("drops to the sandbox user with no groups and no capabilities when root", () => {
    expect(setprivArgs({ uid: 65534, gid: 65534 })).toEqual([
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--bounding-set=-all",
      "--no-new-privs",
      "--inh-caps=-all",
    ]);
    expect(setprivArgs(undefined)).toEqual(["--no-new-privs", "--inh-caps=-all"]);
  });

  it("unshares every namespace, network included, and cuts the sandbox loose from mcp3", () => {
    const args = bwrapArgs(plan());
    for (const flag of [
      "--unshare-all",
      "--unshare-user",
      "--disable-userns",
      "--as-pid-1",
      "--die-with-parent",
      "--new-session",
      "--clearenv",
    ]) {
      expect(args).toContain(flag);
    }
    expect(args).not.toContain("--share-net");
    expect(valuesOf(args, "--setenv", 2).map(([name]) => name)).toEqual([
      "PATH",
      "HOME",
      "USER",
      "LOGNAME",
      "LANG",
      "TMPDIR",
    ]);
  });

  it("shows the host's /usr read-only and nothing else of the host's files", () => {
    const args = bwrapArgs(plan());
    expect(valuesOf(args, "--ro-bind", 2)).toEqual([["/usr", "/usr"]]);
    for (const writable of ["--bind", "--bind-try", "--dev-bind", "--dev-bind-try"]) {
      expect(args).not.toContain(writable);
    }
    expect(valuesOf(args, "--symlink", 2)).toEqual([
      ["usr/bin", "/bin"],
      ["usr/lib", "/lib"],
      ["usr/lib64", "/lib64"],
    ]);
    expect(args.join(" ")).not.toMatch(/\/etc|\/home|\/root|\/work/);
    // Everything bwrap itself created on its root tmpfs becomes read-only last.
    expect(args.slice(-2)).toEqual(["--remount-ro", "/"]);
  });

  it("binds real top-level directories read-only where /usr is not merged", () => {
    const args = bwrapArgs(plan({ layout: { entries: [{ path: "/lib64" }] } }));
    expect(valuesOf(args, "--ro-bind", 2)).toEqual([
      ["/usr", "/usr"],
      ["/lib64", "/lib64"],
    ]);
  });

  it("gives /tmp, /dev/shm and the working directory size-capped tmpfs of their own", () => {
    const args = bwrapArgs(plan());
    expect(valuesOf(args, "--size", 4)).toEqual([
      [String(32 * 1024 * 1024), "--perms", "1777", "--tmpfs"],
      [String(32 * 1024 * 1024), "--perms", "1777", "--tmpfs"],
      [String(32 * 1024 * 1024), "--perms", "0700", "--tmpfs"],
    ]);
    expect(valuesOf(args, "--tmpfs")).toEqual([["/dev/shm"], ["/tmp"], [SANDBOX.workDir]]);
    expect(valuesOf(args, "--chdir")).toEqual([[SANDBOX.workDir]]);
    expect(valuesOf(args, "--ro-bind-data", 2)).toEqual([["3", SANDBOX.codePath]]);
  });
});

describe("one user per slot", () => {
  const PASSWD = [
    "root:x:0:0:root:/root:/bin/bash",
    "alice:x:1000:1000::/home/alice:/bin/bash",
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  ].join("\n");

  it("gives slot i the uid MCP3_SANDBOX_UID + i", () => {
    expect([0, 1, 2].map((slot) => slotUid(70000, slot))).toEqual([70000, 70001, 70002]);
  });

  it("accepts a range that no user and no subordinate range holds", () => {
    const subuid = "alice:100000:65536\n";
    expect(checkSlotUids(70000, 64, { passwd: PASSWD, subuid })).toEqual({ ok: true });
    expect(checkSlotUids(70000, 2, { passwd: "", subuid: "" })).toEqual({ ok: true });
  });

  it("refuses a range that reaches a user of /etc/passwd, naming it", () => {
    // As deployed before slots had their own uids: one system user, the next uid a person's.
    const check = checkSlotUids(999, 2, { passwd: PASSWD, subuid: "" });
    expect(!check.ok && check.reason).toBe(
      "MCP3_SANDBOX_UID's range 999-1000 (one uid per MCP3_CONCURRENCY slot) includes uid 1000, " +
        "the user alice in /etc/passwd",
    );
    expect(checkSlotUids(65533, 2, { passwd: PASSWD, subuid: "" }).ok).toBe(false);
  });

  it("refuses a range that overlaps a user's subordinate uids (their containers)", () => {
    const check = checkSlotUids(99999, 2, { passwd: PASSWD, subuid: "alice:100000:65536\n" });
    expect(!check.ok && check.reason).toMatch(
      /overlaps alice's subordinate uids 100000-165535 in \/etc\/subuid$/,
    );
  });

  it("builds each slot's command line with that slot's uid", () => {
    const args = (uid: number) => sandboxCommand(plan({ dropTo: { uid, gid: 65534 } })).args;
    expect(args(slotUid(70000, 1))).toContain("--reuid=70001");
    expect(args(slotUid(70000, 1))).toContain("--regid=65534");
  });
});

describe("createPool", () => {
  function gate() {
    let open: () => void = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { open, opened };
  }

  /** A pool whose caps do not get in the way unless a test sets them. */
  function pool(limits: Partial<PoolLimits> = {}) {
    return createPool({
      concurrency: 2,
      queueLimit: 8,
      perAgentRunning: 2,
      perAgentWaiting: 8,
      ...limits,
    });
  }

  /**
   * Tasks that record their start ("a1 in slot 0") and finish when told: a deterministic scheduler
   * for the pool, no clock.
   */
  function recorder(p: Pool) {
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const results = new Map<string, Promise<Admission<string>>>();
    const submit = (agent: string, name: string, signal?: AbortSignal) => {
      const g = gate();
      gates.set(name, g);
      const result = p.submit(
        agent,
        async (slot) => {
          started.push(`${name} in slot ${slot}`);
          await g.opened;
          return name;
        },
        signal,
      );
      results.set(name, result);
      return result;
    };
    /** Lets what the pool decided run: every task given a slot has started. */
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    /** Lets `name` finish, and waits until the pool has handed its slot on. */
    const finish = async (name: string) => {
      gates.get(name)?.open();
      await results.get(name);
      await settle();
    };
    return { started, submit, finish, settle };
  }

  it("runs at most `concurrency` tasks and refuses one more than the queue holds", async () => {
    const p = pool({ concurrency: 2, queueLimit: 1 });
    const { started, submit, finish, settle } = recorder(p);
    const runs = [submit("a", "a1"), submit("a", "a2"), submit("a", "a3")];
    await settle();
    expect(started).toEqual(["a1 in slot 0", "a2 in slot 1"]);
    expect(p.running).toBe(2);
    expect(p.waiting).toBe(1);
    expect(await submit("b", "b1")).toEqual({ ok: false, reason: "queue_full" });
    await finish("a1");
    expect(started).toEqual(["a1 in slot 0", "a2 in slot 1", "a3 in slot 0"]);
    await finish("a2");
    await finish("a3");
    expect(await Promise.all(runs)).toEqual([
      { ok: true, value: "a1" },
      { ok: true, value: "a2" },
      { ok: true, value: "a3" },
    ]);
    expect(p.running).toBe(0);
  });

  it("gives each running task a slot no other running task holds, lowest free first", async () => {
    const p = pool({ concurrency: 3 });
    const { started, submit, finish, settle } = recorder(p);
    for (const name of ["a1", "b1", "c1", "d1"]) submit(name[0] as string, name);
    await settle();
    expect(started).toEqual(["a1 in slot 0", "b1 in slot 1", "c1 in slot 2"]);
    // The fourth waits, and gets the slot the second gives back.
    await finish("b1");
    expect(started.at(-1)).toBe("d1 in slot 1");
    await Promise.all(["a1", "c1", "d1"].map(finish));
    expect(p.running).toBe(0);
    expect(await p.submit("e", async (slot) => slot)).toEqual({ ok: true, value: 0 });
  });

  it("lets waiting agents take turns instead of serving calls in arrival order", async () => {
    const p = pool({ concurrency: 1 });
    const { started, submit, finish } = recorder(p);
    // a sends four calls, then b and c one each.
    for (const name of ["a1", "a2", "a3", "a4", "b1", "c1"]) submit(name[0] as string, name);
    for (const name of ["a1", "b1", "c1", "a2", "a3"]) await finish(name);
    expect(started.map((s) => s.split(" ")[0])).toEqual(["a1", "b1", "c1", "a2", "a3", "a4"]);
  });

  it("serves a newcomer before an agent that has just had a turn, and no agent twice in a row while another waits", async () => {
    const p = pool({ concurrency: 1 });
    const { started, submit, finish } = recorder(p);
    submit("a", "a1");
    submit("a", "a2");
    submit("b", "b1");
    await finish("a1"); // b1 starts: a has had its turn
    submit("b", "b2");
    submit("c", "c1");
    await finish("b1"); // c never started, a longest ago: c1, then a2, then b2
    await finish("c1");
    await finish("a2");
    expect(started.map((s) => s.split(" ")[0])).toEqual(["a1", "b1", "c1", "a2", "b2"]);
  });

  it("keeps one agent to its cap of running tasks even while a slot is free", async () => {
    const p = pool({ concurrency: 2, perAgentRunning: 1 });
    const { started, submit, finish, settle } = recorder(p);
    submit("a", "a1");
    submit("a", "a2");
    submit("a", "a3");
    await settle();
    expect(started).toEqual(["a1 in slot 0"]);
    expect(p.running).toBe(1);
    expect(p.waiting).toBe(2);
    // Another agent gets the slot a may not take, at once.
    submit("b", "b1");
    await settle();
    expect(started).toEqual(["a1 in slot 0", "b1 in slot 1"]);
    await finish("b1");
    expect(started).toHaveLength(2); // a is still at its cap
    await finish("a1");
    expect(started.at(-1)).toBe("a2 in slot 0");
  });

  it("refuses an agent's call past its share of the queue, and still queues another agent's", async () => {
    const p = pool({ concurrency: 1, queueLimit: 4, perAgentWaiting: 2 });
    const { submit } = recorder(p);
    submit("a", "a1");
    submit("a", "a2");
    submit("a", "a3");
    expect(await submit("a", "a4")).toEqual({ ok: false, reason: "agent_queue_full" });
    submit("b", "b1");
    expect(p.waiting).toBe(3);
  });

  it("drops a waiting task whose call is cancelled, and frees the slot of a failed one", async () => {
    const p = pool({ concurrency: 1, queueLimit: 4 });
    const g = gate();
    const first = p.submit("a", async () => {
      await g.opened;
      throw new Error("boom");
    });
    const controller = new AbortController();
    let ran = false;
    const second = p.submit(
      "b",
      async () => {
        ran = true;
      },
      controller.signal,
    );
    controller.abort();
    expect(await second).toEqual({ ok: false, reason: "cancelled" });
    expect(p.waiting).toBe(0);
    g.open();
    await expect(first).rejects.toThrow("boom");
    expect(await p.submit("b", async () => "next")).toEqual({ ok: true, value: "next" });
    expect(ran).toBe(false);
  });
});

function raw(overrides: Partial<RawOutcome> = {}): RawOutcome {
  return {
    exitCode: 0,
    stdout: Buffer.from(""),
    stderr: Buffer.from(""),
    stdoutDropped: 0,
    stderrDropped: 0,
    overflowed: undefined,
    killed: undefined,
    durationMs: 42,
    spawnError: undefined,
    ...overrides,
  };
}

const LIMITS = defaults().limits;

describe("run outcomes", () => {
  it("never cuts a UTF-8 character in two", () => {
    const text = Buffer.from("aé日😀", "utf8"); // 1 + 2 + 3 + 4 bytes
    expect(utf8Prefix(text, 2).toString()).toBe("a");
    expect(utf8Prefix(text, 3).toString()).toBe("aé");
    expect(utf8Prefix(text, 5).toString()).toBe("aé");
    expect(utf8Prefix(text, 6).toString()).toBe("aé日");
    expect(utf8Prefix(text, 9).toString()).toBe("aé日");
    expect(utf8Prefix(text, 10).toString()).toBe("aé日😀");
  });

  it("marks truncated output visibly", () => {
    expect(shownOutput(Buffer.from("abc"), 0, "stdout", 3)).toBe("abc");
    expect(shownOutput(Buffer.from("abc"), 7, "stdout", 3)).toBe(
      "abc\n[… stdout truncated: 7 more bytes not shown, the limit is 3 bytes]",
    );
  });

  it("reads bwrap's 128+N exit codes as signals", () => {
    expect(signalOf(137)).toBe("SIGKILL");
    expect(signalOf(152)).toBe("SIGXCPU");
    expect(signalOf(1)).toBeNull();
    expect(signalOf(undefined)).toBeNull();
  });

  it("reports a clean run as a plain result with stdout", () => {
    const result = toToolResult(interpret(raw({ stdout: Buffer.from("1\n") }), LIMITS, 5));
    expect(result.isError).toBeUndefined();
    expect(result.content).toEqual([
      { type: "text", text: "Exit code 0 after 0.04 s.\nstdout:\n1\n" },
    ]);
    expect(result.structuredContent).toMatchObject({ exit_code: 0, stop_reason: null });
  });

  it("reports a failing program as isError with its traceback", () => {
    const stderr =
      'Traceback (most recent call last):\n  File "/code/main.py", line 1\nZeroDivisionError: division by zero\n';
    const result = toToolResult(
      interpret(raw({ exitCode: 1, stderr: Buffer.from(stderr) }), LIMITS, 5),
    );
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain("ZeroDivisionError");
    expect(result.structuredContent).toMatchObject({ exit_code: 1, stop_reason: null });
  });

  it.each<[string, Partial<RawOutcome>, string, RegExp]>([
    ["a wall-clock kill", { exitCode: 137, killed: "timeout" }, "timeout", /time limit.*5 s/],
    [
      "an output overflow",
      { exitCode: 137, killed: "output_limit", overflowed: "stderr", stderrDropped: 9 },
      "output_limit",
      /more than 65536 bytes to stderr/,
    ],
    ["a cancelled call", { exitCode: 137, killed: "cancelled" }, "cancelled", /cancelled/],
    ["the hard CPU limit", { exitCode: 137 }, "cpu_limit", /CPU limit.*6 s/],
    ["SIGXCPU", { exitCode: 152 }, "cpu_limit", /CPU limit/],
    [
      "a MemoryError",
      { exitCode: 1, stderr: Buffer.from("Traceback ...\nMemoryError\n") },
      "memory_limit",
      /memory limit.*256 MiB/,
    ],
    [
      "EFBIG",
      { exitCode: 1, stderr: Buffer.from("OSError: [Errno 27] File too large\n") },
      "file_size_limit",
      /file size limit.*16 MiB/,
    ],
    ["SIGSEGV", { exitCode: 139 }, "signal", /killed by SIGSEGV/],
    ["no exit code from bwrap", { exitCode: undefined }, "sandbox_failure", /sandbox failed/],
    [
      "a spawn failure",
      { exitCode: undefined, spawnError: "/usr/bin/prlimit: ENOENT" },
      "sandbox_failure",
      /could not be started.*ENOENT/,
    ],
  ])("names %s as the stop reason", (_name, outcome, reason, message) => {
    const result = interpret(raw(outcome), LIMITS, 5);
    expect(result.stopReason).toBe(reason);
    expect(result.stopMessage).toMatch(message);
    const tool = toToolResult(result);
    expect(tool.isError).toBe(true);
    expect(tool.structuredContent).toMatchObject({ stop_reason: reason });
  });
});
