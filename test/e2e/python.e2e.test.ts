/**
 * `mcp3_run_python_code` through the whole system, as an agent uses it: the launcher's real
 * processes, the MCP SDK client, the proxy, mcp3 and its bubblewrap sandbox (installed by
 * `.ci/sandbox.sh setup`). First ordinary programs, then escape attempts, each asserting what
 * actually happened inside the sandbox and on the host.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processesOf } from "../support/processes.ts";
import { connectAgent, type Launched, launch, resultText } from "./launcher.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOOL = "mcp3_run_python_code";
// mcp3 runs as root here and runs slot i as uid 70000 + i (MCP3_SANDBOX_UID's default), with
// MCP3_CONCURRENCY's default of 2 slots.
const SANDBOX_UIDS = [70000, 70001];
const MAX_PROCESSES = 16; // MCP3_MAX_PROCESSES's default
// The launcher passes its environment down to mcp3: the program must not see this.
const SECRET = `mcp3-e2e-${randomBytes(12).toString("hex")}`;

interface Facts {
  exit_code: number | null;
  signal: string | null;
  stop_reason: string | null;
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  duration_ms: number;
}

interface Run {
  isError: boolean;
  text: string;
  facts: Facts;
}

let system: Launched;
let agent1: Client;
let agent2: Client;
/** Processes of the sandbox user that were there before the system started (not ours). */
let foreign: number[] = [];

async function sandboxProcesses(): Promise<number[]> {
  return (await Promise.all(SANDBOX_UIDS.map(processesOf))).flat();
}

async function strays(): Promise<number[]> {
  return (await sandboxProcesses()).filter((pid) => !foreign.includes(pid));
}

async function run(code: string, timeoutSeconds?: number, client = agent1): Promise<Run> {
  const result = await client.callTool({
    name: TOOL,
    arguments: timeoutSeconds === undefined ? { code } : { code, timeout_seconds: timeoutSeconds },
  });
  return {
    isError: result.isError === true,
    text: resultText(result),
    facts: result.structuredContent as unknown as Facts,
  };
}

/** Runs a program that prints one JSON document, and parses it. */
async function probe(code: string, timeoutSeconds?: number): Promise<Record<string, unknown>> {
  const { facts, text } = await run(`import json\n${code}`, timeoutSeconds);
  expect(facts?.exit_code, text).toBe(0);
  return JSON.parse(facts.stdout) as Record<string, unknown>;
}

beforeAll(async () => {
  process.env.MCPCP_TEST_SECRET = SECRET;
  foreign = await sandboxProcesses();
  system = await launch();
  agent1 = await connectAgent(system.proxyUrl, "agent_name1");
  agent2 = await connectAgent(system.proxyUrl, "agent_name2");
}, 150_000);

afterAll(async () => {
  await Promise.all([agent1, agent2].map((c) => c?.close().catch(() => {})));
  if (system?.child.exitCode === null) await system.stop();
  delete process.env.MCPCP_TEST_SECRET;
}, 30_000);

describe("run_python_code through the gateway", () => {
  it.each(["agent_name1", "agent_name2"])("is offered to %s with its schema", async (name) => {
    const client = name === "agent_name1" ? agent1 : agent2;
    const tool = (await client.listTools()).tools.find((t) => t.name === TOOL);
    expect(tool?.inputSchema.required).toEqual(["code"]);
    expect(Object.keys(tool?.inputSchema.properties ?? {})).toEqual(["code", "timeout_seconds"]);
  });

  it.each(["agent_name1", "agent_name2"])("runs print(1) for %s", async (name) => {
    const result = await run("print(1)", undefined, name === "agent_name1" ? agent1 : agent2);
    expect(result.isError).toBe(false);
    expect(result.facts).toMatchObject({
      exit_code: 0,
      stdout: "1\n",
      stderr: "",
      stop_reason: null,
    });
    expect(result.text).toMatch(/^Exit code 0 after \d+\.\d\d s\.\nstdout:\n1\n$/);
  });

  it("returns a traceback as a tool error a model can act on", async () => {
    const result = await run('import json\ndata = json.loads("{broken")\n');
    expect(result.isError).toBe(true);
    expect(result.facts.exit_code).toBe(1);
    expect(result.facts.stderr).toContain('File "/code/main.py", line 2, in <module>');
    expect(result.text).toMatch(/json\.decoder\.JSONDecodeError: Expecting property name/);
  });

  it("runs standard-library programs", async () => {
    const out = await probe(`
import collections, datetime, decimal, fractions, hashlib, itertools, re, sqlite3, statistics
db = sqlite3.connect(":memory:")
db.execute("create table t (n integer)")
db.executemany("insert into t values (?)", [(i,) for i in range(10)])
print(json.dumps({
    "sha256": hashlib.sha256(b"mcpcp").hexdigest()[:16],
    "mean": statistics.mean([1, 2, 3, 4]),
    "third": str(fractions.Fraction(1, 3) + fractions.Fraction(1, 6)),
    "money": str(decimal.Decimal("0.1") + decimal.Decimal("0.2")),
    "words": collections.Counter("a b a c a".split()).most_common(1),
    "pairs": len(list(itertools.combinations(range(5), 2))),
    "date": datetime.date(2026, 7, 28).isoformat(),
    "digits": re.findall(r"\\d+", "a1b22c333"),
    "sum": db.execute("select sum(n) from t").fetchone()[0],
}))
`);
    expect(out).toEqual({
      sha256: createHash("sha256").update("mcpcp").digest("hex").slice(0, 16),
      mean: 2.5,
      third: "1/2",
      money: "0.3",
      words: [["a", 3]],
      pairs: 10,
      date: "2026-07-28",
      digits: ["1", "22", "333"],
      sum: 45,
    });
  });

  it("prints unicode unchanged", async () => {
    const result = await run('print("héllo ✓ 日本語 😀 Ω")\n');
    expect(result.facts.stdout).toBe("héllo ✓ 日本語 😀 Ω\n");
  });

  it("writes then reads a file in its empty working directory", async () => {
    const out = await probe(`
import os
before = os.listdir(".")
with open("notes.txt", "w") as f:
    f.write("line 1\\nline 2\\n")
print(json.dumps({"cwd": os.getcwd(), "before": before, "read": open("notes.txt").read(),
                  "after": os.listdir(".")}))
`);
    expect(out).toEqual({
      cwd: "/sandbox",
      before: [],
      read: "line 1\nline 2\n",
      after: ["notes.txt"],
    });
    // The next run starts from an empty directory again.
    expect(await probe('import os\nprint(json.dumps({"files": os.listdir(".")}))')).toEqual({
      files: [],
    });
  });
});

describe("escape attempts, each contained", () => {
  it("cannot reach the proxy's own port on 127.0.0.1: its loopback is its own", async () => {
    const out = await probe(`
import socket
s = socket.socket()
try:
    s.connect(("127.0.0.1", ${system.ports.proxy}))
    print(json.dumps({"connected": True}))
except OSError as e:
    print(json.dumps({"connected": False, "errno": e.errno, "error": type(e).__name__}))
`);
    expect(out).toEqual({ connected: false, errno: 111, error: "ConnectionRefusedError" });
    // Meanwhile the proxy is there for everyone else: this very call went through it.
    expect((await fetch(`http://127.0.0.1:${system.ports.proxy}/healthz`)).status).toBe(200);
  });

  it("cannot reach any outside address: no route, refused before a packet leaves", async () => {
    const out = await probe(`
import socket, time
results = {}
for host, port in [("192.0.2.1", 80), ("1.1.1.1", 53), ("::ffff:192.0.2.1", 443)]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family)
    s.settimeout(5)
    began = time.monotonic()
    try:
        s.connect((host, port))
        results[host] = "connected"
    except OSError as e:
        results[host] = [e.errno, round(time.monotonic() - began, 2)]
try:
    socket.getaddrinfo("example.com", 443)
    results["dns"] = "resolved"
except OSError as e:
    results["dns"] = type(e).__name__
print(json.dumps(results))
`);
    // ENETUNREACH (101) at once: the namespace has only a loopback interface and no routes.
    for (const host of ["192.0.2.1", "1.1.1.1", "::ffff:192.0.2.1"]) {
      const [errno, seconds] = out[host] as [number, number];
      expect(errno).toBe(101);
      expect(seconds).toBeLessThan(0.5);
    }
    expect(out.dns).toBe("gaierror");
  });

  it("cannot read /etc/passwd or the repository's private key", async () => {
    const key = join(REPO, "keys", "private.pem");
    expect(existsSync(key)).toBe(true); // it is there on the host
    expect(existsSync("/etc/passwd")).toBe(true);
    const out = await probe(`
import os
results = {"root": sorted(os.listdir("/"))}
for path in ["/etc/passwd", ${JSON.stringify(key)}, "/root/.bashrc", "/proc/1/root/etc/passwd"]:
    try:
        open(path).read()
        results[path] = "read"
    except OSError as e:
        results[path] = type(e).__name__
print(json.dumps(results))
`);
    // The system's /usr and links into it, and what bwrap built: nothing else of the host.
    expect(out.root).toEqual(
      expect.arrayContaining(["code", "dev", "proc", "sandbox", "tmp", "usr"]),
    );
    for (const entry of out.root as string[]) {
      expect([
        "bin",
        "code",
        "dev",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "proc",
        "sandbox",
        "sbin",
        "tmp",
        "usr",
      ]).toContain(entry);
    }
    expect(out["/etc/passwd"]).toBe("FileNotFoundError");
    expect(out[key]).toBe("FileNotFoundError");
    expect(out["/root/.bashrc"]).toBe("FileNotFoundError");
    expect(out["/proc/1/root/etc/passwd"]).toBe("FileNotFoundError");
  });

  it("cannot write outside its working directory, and /tmp does not reach the host", async () => {
    const name = `mcp3-e2e-${randomBytes(6).toString("hex")}`;
    const out = await probe(`
import os
results = {}
for path in ["/usr/${name}", "/${name}", "/code/main.py", "/dev/${name}", "/bin/${name}",
             "/tmp/${name}"]:
    try:
        with open(path, "w") as f:
            f.write("x")
        results[path] = "written"
    except OSError as e:
        results[path] = e.errno
print(json.dumps(results))
`);
    expect(out).toEqual({
      [`/usr/${name}`]: 30, // EROFS
      [`/${name}`]: 30,
      "/code/main.py": 30,
      [`/dev/${name}`]: 30,
      [`/bin/${name}`]: 30,
      [`/tmp/${name}`]: "written", // a private tmpfs...
    });
    expect(existsSync(`/tmp/${name}`)).toBe(false); // ...that the host never sees
    expect(existsSync(`/usr/${name}`)).toBe(false);
  });

  it("sees only its own processes and cannot signal the server", async () => {
    const mcp3 = system.pids.mcp3 as number;
    const out = await probe(`
import os, signal
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
try:
    os.kill(${mcp3}, signal.SIGKILL)
    killed = "sent"
except OSError as e:
    killed = type(e).__name__
print(json.dumps({"pids": pids, "me": os.getpid(), "kill": killed,
                  "init": open("/proc/1/cmdline").read().split("\\0")[0]}))
`);
    expect(out).toEqual({ pids: [1], me: 1, kill: "ProcessLookupError", init: "/usr/bin/python3" });
    expect(await run("print('still here')")).toMatchObject({ facts: { stdout: "still here\n" } });
  });

  it("inherits no environment, so no secret of the server's", async () => {
    // The secret really is in mcp3's environment...
    const environ = await readFile(`/proc/${system.pids.mcp3}/environ`, "utf8");
    expect(environ.split("\0")).toContain(`MCPCP_TEST_SECRET=${SECRET}`);
    const out = await probe(`
import os
blob = open("/proc/self/environ", "rb").read().decode()
print(json.dumps({"env": sorted(os.environ), "leaked": ${JSON.stringify(SECRET)} in blob}))
`);
    // ...and not in the program's.
    expect(out).toEqual({
      env: ["HOME", "LANG", "LOGNAME", "PATH", "PWD", "TMPDIR", "USER"],
      leaked: false,
    });
  });

  it("cannot become root, mount, or build namespaces of its own", async () => {
    const out = await probe(`
import ctypes, os
results = {"uid": os.getuid()}
try:
    os.setuid(0)
    results["setuid"] = "root"
except OSError as e:
    results["setuid"] = e.errno
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    return [getattr(libc, name)(*args), ctypes.get_errno()]
results["unshare_user"] = call("unshare", 0x10000000)
results["unshare_net"] = call("unshare", 0x40000000)
results["mount"] = call("mount", b"none", b"/sandbox", b"tmpfs", 0, None)
print(json.dumps(results))
`);
    expect(out).toEqual({
      uid: 1000,
      setuid: 22, // EINVAL: there is no uid 0 in its user namespace
      unshare_user: [-1, 28], // ENOSPC: nested user namespaces are disabled (max 0)
      unshare_net: [-1, 1], // EPERM: no capabilities
      mount: [-1, 1],
    });
  });

  it("stops an infinite loop at the wall-clock limit", async () => {
    const result = await run("while True:\n    pass\n", 2);
    expect(result.isError).toBe(true);
    expect(result.facts).toMatchObject({ stop_reason: "timeout", signal: "SIGKILL" });
    expect(result.facts.duration_ms).toBeGreaterThanOrEqual(1900);
    expect(result.facts.duration_ms).toBeLessThan(4000);
    expect(result.text).toMatch(/^Stopped: time limit/);
  });

  it("stops a sleep past the wall-clock limit, keeping what it printed", async () => {
    const result = await run('import time\nprint("before", flush=True)\ntime.sleep(60)\n', 1);
    expect(result.facts).toMatchObject({ stop_reason: "timeout", stdout: "before\n" });
    expect(result.facts.duration_ms).toBeLessThan(3000);
  });

  it("stops a memory bomb at the address-space limit", async () => {
    const result = await run("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))\n");
    expect(result.isError).toBe(true);
    expect(result.facts.stop_reason).toBe("memory_limit");
    expect(result.facts.stderr).toMatch(/MemoryError\s*$/);
  });

  it("contains a fork bomb at the process limit, and leaves nothing behind", async () => {
    const result = await run("import os\nwhile True:\n    os.fork()\n", 3);
    expect(result.isError).toBe(true);
    expect(result.facts.stderr).toContain(
      "BlockingIOError: [Errno 11] Resource temporarily unavailable",
    );
    expect(await strays()).toEqual([]);
    expect((await run("print(2)")).facts.stdout).toBe("2\n");
  });

  it("keeps a run that forks to its process limit from failing another agent's run", async () => {
    // agent_name1 forks until its limit refuses, then holds every process it got.
    const hogCall = new AbortController();
    const hog = agent1.callTool(
      {
        name: TOOL,
        arguments: {
          code: `
import os, time
held = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        held += 1
except BlockingIOError:
    pass
time.sleep(60)
`,
          timeout_seconds: 8,
        },
      },
      undefined,
      { signal: hogCall.signal },
    );
    hog.catch(() => {}); // cancelled below
    // It holds its whole limit: bwrap's monitor, the program and its children.
    await expect
      .poll(async () => (await strays()).length, { timeout: 6000, interval: 50 })
      .toBeGreaterThanOrEqual(MAX_PROCESSES);

    // Meanwhile agent_name2's program starts its own processes as if the other were not there.
    const other = await run(
      `
import os
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("forked", len(children))
`,
      undefined,
      agent2,
    );
    hogCall.abort();
    expect(other.facts).toMatchObject({ exit_code: 0, stdout: "forked 8\n", stderr: "" });
    await expect.poll(strays, { timeout: 4000, interval: 100 }).toEqual([]);
  });

  it("kills setsid children that try to outlive the program", async () => {
    const started = `mcp3-e2e-${randomBytes(6).toString("hex")}`;
    const code = `
import os, subprocess, sys, time
# A double-forked daemon in its own session, and a setsid child: both try to live on.
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "300"])
    os._exit(0)
subprocess.Popen(["setsid", "sleep", "300"])
subprocess.Popen(["sleep", "300"], start_new_session=True)
time.sleep(0.3)
print("${started}", len([p for p in os.listdir("/proc") if p.isdigit()]), flush=True)
time.sleep(60)
`;
    // Once killed at the wall-clock limit...
    const killed = await run(code, 1);
    expect(killed.facts.stop_reason).toBe("timeout");
    expect(killed.facts.stdout).toMatch(new RegExp(`^${started} [4-9]\\n$`));
    expect(await strays()).toEqual([]);
    // ...and once ending normally while its daemons still sleep.
    const ended = await run(code.replace("time.sleep(60)", "sys.exit(0)"));
    expect(ended.facts).toMatchObject({ exit_code: 0, stop_reason: null });
    expect(await strays()).toEqual([]);
  });

  it("cannot write a 100 MB file, nor fill its disk with many smaller ones", async () => {
    const big = await run(
      'with open("big", "wb") as f:\n    f.write(b"\\0" * 100 * 1024 * 1024)\n',
    );
    expect(big.isError).toBe(true);
    expect(big.facts.stop_reason).toBe("file_size_limit");
    expect(big.facts.stderr).toContain("[Errno 27] File too large");

    const many = await probe(`
written = 0
try:
    for i in range(10):
        with open(f"part{i}", "wb") as f:
            f.write(b"\\0" * 15 * 1024 * 1024)
        written += 15
except OSError as e:
    print(json.dumps({"written_mib": written, "errno": e.errno}))
`);
    expect(many).toEqual({ written_mib: 30, errno: 28 }); // ENOSPC: the working directory is capped
  });

  it("truncates a flood of output and stops the program", async () => {
    const result = await run('import sys\nwhile True:\n    sys.stdout.write("flood " * 1000)\n');
    expect(result.isError).toBe(true);
    expect(result.facts).toMatchObject({ stop_reason: "output_limit", stdout_truncated: true });
    expect(result.facts.stdout.startsWith("flood flood")).toBe(true);
    expect(result.facts.stdout).toMatch(
      /\[… stdout truncated: \d+ more bytes not shown, the limit is 65536 bytes\]$/,
    );
    expect(result.facts.duration_ms).toBeLessThan(2000);
  });

  it("still serves the next call normally, and no process of the sandbox user is left", async () => {
    const result = await run('print("after all that")', undefined, agent2);
    expect(result).toMatchObject({
      isError: false,
      facts: { exit_code: 0, stdout: "after all that\n" },
    });
    expect(await strays()).toEqual([]);
    const health = await fetch(`http://127.0.0.1:${system.ports.mcp3}/healthz`);
    expect(await health.json()).toEqual({ status: "ok", server: "mcp3" });
  });
});

describe("a long run through the gateway: progress as it happens, cancellation that reaches the sandbox", () => {
  it("relays the sandbox's progress to the agent before the call finishes", async () => {
    const seen: { at: number; progress: number }[] = [];
    const began = Date.now();
    const result = await agent1.callTool(
      {
        name: TOOL,
        arguments: { code: "import time\ntime.sleep(2.5)\nprint('done')", timeout_seconds: 6 },
      },
      undefined,
      { onprogress: (p) => seen.push({ at: Date.now() - began, progress: p.progress }) },
    );
    const finished = Date.now() - began;
    expect(resultText(result)).toContain("done");
    expect(seen.length).toBeGreaterThanOrEqual(2);
    // Reports arrived while the program was still sleeping, not all at once at the end.
    expect(seen[0]?.at).toBeLessThan(finished - 1000);
  });

  it("kills the program when the agent cancels the call", async () => {
    const controller = new AbortController();
    const call = agent1.callTool(
      { name: TOOL, arguments: { code: "import time\ntime.sleep(7)", timeout_seconds: 8 } },
      undefined,
      {
        signal: controller.signal,
        onprogress: () => controller.abort("the agent changed its mind"),
      },
    );
    await expect(call).rejects.toThrow();
    // The sandbox's processes are gone well before the program's own 7 s.
    await expect.poll(strays, { timeout: 4000, interval: 200 }).toEqual([]);
  });
});
