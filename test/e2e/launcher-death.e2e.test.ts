/**
 * However the launcher ends, nothing of the system keeps serving: SIGKILL of the launcher alone
 * (no handler of its own runs), SIGKILL of its whole process group, SIGTERM, SIGINT. Within 3 s
 * every port refuses connections and no process the launcher started is left (the servers, their
 * sentinels, wrangler's CLI, workerd, esbuild: the whole process tree, snapshotted before the
 * kill), and a new launch on the same ports starts. And wrangler's state is its owner's alone.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { wranglerStateDirs } from "../../scripts/wrangler-state.ts";
import { type Launched, launch } from "./launcher.ts";

const ROOT = join(import.meta.dirname, "..", "..");
/** The launcher's promise once it has died, however (docs/design.md, "The system"). */
const QUIET_WITHIN_MS = 3000;

interface Proc {
  pid: number;
  /** Clock ticks after boot: with the pid, it names one process even if the pid is reused. */
  start: string;
  state: string;
  command: string;
}

/** A process from /proc/<pid>/stat (fields after the command name, which may hold spaces). */
function readProc(pid: number): (Proc & { ppid: number }) | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    return {
      pid,
      state: fields[0] as string,
      ppid: Number(fields[1]),
      start: fields[19] as string,
      command,
    };
  } catch {
    return undefined; // gone
  }
}

/** `root` and every process descended from it, now. */
function processTree(root: number): Proc[] {
  const all = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((proc) => proc !== undefined);
  const tree: Proc[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    for (const proc of all) {
      if (proc.pid === pid) tree.push(proc);
      if (proc.ppid === pid) queue.push(proc.pid);
    }
  }
  return tree;
}

/** The processes of `tree` still running: the same pid and start time, and not a zombie. */
function stillRunning(tree: Proc[]): string[] {
  return tree
    .filter((proc) => {
      const now = readProc(proc.pid);
      return now !== undefined && now.start === proc.start && now.state !== "Z";
    })
    .map((proc) => `${proc.pid} ${proc.command.slice(0, 120)}`);
}

/** Whether something accepts a TCP connection on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The four servers' ports and wrangler's two inspector ports (the launcher's port + 226). */
function systemPorts(system: Launched): number[] {
  const { proxy, mcp1, mcp2, mcp3 } = system.ports;
  return [proxy, mcp1, mcp2, mcp3, proxy + 226, mcp1 + 226];
}

async function serving(ports: number[]): Promise<number[]> {
  const open = await Promise.all(ports.map(accepts));
  return ports.filter((_, i) => open[i]);
}

const umaskOf = (pid: number) =>
  /^Umask:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];

const deaths: { how: string; detached: boolean; kill: (system: Launched) => void }[] = [
  {
    how: "SIGKILL of the launcher alone",
    detached: false,
    kill: (system) => process.kill(system.child.pid as number, "SIGKILL"),
  },
  {
    how: "SIGKILL of the launcher's process group",
    detached: true,
    kill: (system) => process.kill(-(system.child.pid as number), "SIGKILL"),
  },
  { how: "SIGTERM", detached: false, kill: (system) => system.child.kill("SIGTERM") },
  { how: "SIGINT", detached: false, kill: (system) => system.child.kill("SIGINT") },
];

describe("a launcher that dies", () => {
  it.each(deaths)(
    "leaves nothing serving 3 s after $how, and the same ports launch again",
    async ({ how, detached, kill }) => {
      const system = await launch({ detached });
      try {
        const tree = processTree(system.child.pid as number);
        // What outlived the launcher before: both Workers' workerd (two each), both backends
        // (their sentinels, /bin/sh, name them too).
        const servers = tree.filter((p) => !p.command.startsWith("/bin/sh"));
        expect(
          servers.filter((p) => /\/workerd serve /.test(p.command)).length,
        ).toBeGreaterThanOrEqual(2);
        expect(
          servers.filter((p) => /local-backends\/mcp[23]\/server\.ts/.test(p.command)),
        ).toHaveLength(2);
        const ports = systemPorts(system);
        expect(await serving(ports)).toEqual(ports);

        const killed = performance.now();
        let closed: number | undefined;
        kill(system);
        await expect
          .poll(
            async () => {
              const open = await serving(ports);
              if (open.length === 0) closed ??= performance.now() - killed;
              return { serving: open, running: stillRunning(tree) };
            },
            { timeout: QUIET_WITHIN_MS, interval: 50 },
          )
          .toEqual({ serving: [], running: [] });
        const gone = Math.round(performance.now() - killed);
        console.log(
          `[e2e] ${how}: ports closed after ${Math.round(closed ?? 0)} ms, all gone ${gone} ms`,
        );
      } finally {
        // A failed check must not leave the system to the next test (or after the run).
        if (system.child.exitCode === null && system.child.signalCode === null) {
          await system.stop();
        }
      }

      const again = await launch();
      try {
        expect(Object.keys(again.pids).sort()).toEqual(["mcp1", "mcp2", "mcp3", "proxy"]);
      } finally {
        expect(await again.stop()).toBe(0);
      }
    },
    240_000,
  );
});

describe("wrangler's state", () => {
  it("is in 0700 folders, and wrangler and workerd write under umask 077", async () => {
    const system = await launch();
    try {
      for (const dir of wranglerStateDirs(ROOT)) {
        expect(statSync(dir).mode & 0o777, dir).toBe(0o700);
      }
      // The sentinel shells excepted: they write nothing.
      const wrangler = processTree(system.child.pid as number).filter(
        (p) => /wrangler|workerd/.test(p.command) && !p.command.startsWith("/bin/sh"),
      );
      expect(wrangler.length).toBeGreaterThanOrEqual(6); // two of each: shim, CLI, workerd
      for (const proc of wrangler) expect(umaskOf(proc.pid), proc.command).toBe("0077");
      // As another local user (root can switch, as in CI), when it can reach the repository at all.
      const asNobody = (path: string) =>
        spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "ls", path])
          .status === 0;
      if (asNobody(ROOT)) {
        for (const dir of wranglerStateDirs(ROOT)) expect(asNobody(dir), dir).toBe(false);
      }
    } finally {
      await system.stop();
    }
  }, 180_000);
});
