/**
 * The command line that runs one Python program in the sandbox. Pure: every decision about
 * isolation is here, as data, so a test can read it without starting anything.
 *
 *   prlimit <limits> -- setpriv <drop to an unprivileged user> -- bwrap <namespaces, mounts> --
 *     python3 -I -S -u -X utf8 /code/main.py
 *
 * Each program execs the next, so the process mcp3 spawns ends up as bwrap's monitor; bwrap puts
 * the program in fresh user, mount, PID, network, IPC, UTS and cgroup namespaces, behind an init
 * process (PID 1 there) whose death takes every process of the namespace with it.
 */
import type { SandboxLimits } from "./config.ts";

/** Fixed places inside the sandbox and the descriptors bwrap reads from mcp3. */
export const SANDBOX = {
  /** The program, a read-only file outside the working directory (tracebacks show this path). */
  codePath: "/code/main.py",
  /** The working directory and HOME: an empty tmpfs of its own, gone with the sandbox. */
  workDir: "/sandbox",
  /** Inside the sandbox the program is uid/gid 1000; on the host it is the configured user. */
  innerId: 1000,
  /** bwrap copies the program from this descriptor into `codePath` (`--ro-bind-data`). */
  codeFd: 3,
  /** bwrap reports the init's host PID and the exit code on this descriptor (JSON lines). */
  statusFd: 4,
} as const;

/**
 * How the host's top-level system paths look: on merged-/usr systems (Debian 12) `/bin`, `/lib`,
 * `/lib64` and `/sbin` are symlinks into /usr and are recreated as symlinks; where they are real
 * directories they are bound read-only.
 */
export interface HostLayout {
  entries: { path: string; symlinkTo?: string }[];
}

/** The top-level paths checked for `HostLayout`. */
export const LAYOUT_PATHS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] as const;

export interface SandboxPlan {
  python: string;
  bwrap: string;
  prlimit: string;
  setpriv: string;
  limits: SandboxLimits;
  /** Wall-clock limit of this run; the CPU limit is derived from it. */
  timeoutSeconds: number;
  /** Drop to this user and group first; undefined when mcp3 already runs unprivileged. */
  dropTo: { uid: number; gid: number } | undefined;
  layout: HostLayout;
}

export interface Command {
  command: string;
  args: string[];
}

/** The CPU-seconds limit: SIGXCPU at the wall-clock limit (rounded up), SIGKILL one second on. */
export function cpuLimit(timeoutSeconds: number): { soft: number; hard: number } {
  const soft = Math.max(1, Math.ceil(timeoutSeconds));
  return { soft, hard: soft + 1 };
}

/**
 * `prlimit` options. RLIMIT_NPROC counts every process and thread of the run's host user, which is
 * its slot's own (`sandbox-users.ts`) when mcp3 is root, and mcp3's own user otherwise.
 */
export function prlimitArgs(limits: SandboxLimits, timeoutSeconds: number): string[] {
  const cpu = cpuLimit(timeoutSeconds);
  return [
    `--cpu=${cpu.soft}:${cpu.hard}`,
    `--as=${limits.memoryBytes}`,
    `--fsize=${limits.fileSizeBytes}`,
    `--nproc=${limits.maxProcesses}`,
    `--nofile=${limits.maxOpenFiles}`,
    "--core=0",
  ];
}

/**
 * `setpriv` options. As root: become the sandbox user with no groups, and give up every
 * capability, inheritable and bounding. Always: no_new_privs, so nothing the program execs
 * (a setuid binary, file capabilities) can gain privileges.
 */
export function setprivArgs(dropTo: SandboxPlan["dropTo"]): string[] {
  const drop = dropTo
    ? [`--reuid=${dropTo.uid}`, `--regid=${dropTo.gid}`, "--clear-groups", "--bounding-set=-all"]
    : [];
  return [...drop, "--no-new-privs", "--inh-caps=-all"];
}

/** A size-capped tmpfs: capped because tmpfs lives in memory and RLIMIT_AS does not count it. */
function tmpfs(path: string, bytes: number, mode: string): string[] {
  return ["--size", String(bytes), "--perms", mode, "--tmpfs", path];
}

/** `bwrap` options, in the order bwrap applies them. */
export function bwrapArgs(plan: Pick<SandboxPlan, "limits" | "layout">): string[] {
  const { limits, layout } = plan;
  const home = SANDBOX.workDir;
  const system = layout.entries.flatMap(({ path, symlinkTo }) =>
    symlinkTo === undefined ? ["--ro-bind", path, path] : ["--symlink", symlinkTo, path],
  );
  return [
    // Every namespace; the user namespace explicitly so that nested ones can be forbidden.
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--assert-userns-disabled",
    "--uid",
    String(SANDBOX.innerId),
    "--gid",
    String(SANDBOX.innerId),
    "--hostname",
    "sandbox",
    // The program is PID 1 of its namespace: its death takes every process there with it, and
    // bwrap's monitor reaps it (bwrap's own init would be orphaned to the host's PID 1).
    "--as-pid-1",
    // PR_SET_PDEATHSIG: if bwrap's monitor (or mcp3 above it) dies, the program dies.
    "--die-with-parent",
    // setsid(): no controlling terminal to inject keystrokes into (TIOCSTI).
    "--new-session",
    "--clearenv",
    ...["--setenv", "PATH", "/usr/bin:/bin"],
    ...["--setenv", "HOME", home],
    ...["--setenv", "USER", "sandbox"],
    ...["--setenv", "LOGNAME", "sandbox"],
    ...["--setenv", "LANG", "C.UTF-8"],
    ...["--setenv", "TMPDIR", "/tmp"],
    // The system, read-only: /usr and the top-level links into it. No /etc, /home, /root, /work.
    ...["--ro-bind", "/usr", "/usr"],
    ...system,
    ...["--proc", "/proc"],
    ...["--dev", "/dev"],
    ...tmpfs("/dev/shm", limits.tmpfsBytes, "1777"),
    ...["--remount-ro", "/dev"],
    ...tmpfs("/tmp", limits.tmpfsBytes, "1777"),
    ...tmpfs(home, limits.tmpfsBytes, "0700"),
    ...["--ro-bind-data", String(SANDBOX.codeFd), SANDBOX.codePath],
    ...["--json-status-fd", String(SANDBOX.statusFd)],
    ...["--chdir", home],
    // Last: the root tmpfs bwrap built holds the mount points; nothing may be written there.
    ...["--remount-ro", "/"],
  ];
}

/**
 * The interpreter's options: isolated (-I: no PYTHON* variables, no user site, script dir not on
 * sys.path), no `site` (-S: the standard library only, no dist-packages), unbuffered (-u: output
 * written before a kill is kept), UTF-8 mode (-X utf8) whatever the locale.
 */
export function pythonArgs(python: string): string[] {
  return [python, "-I", "-S", "-u", "-X", "utf8", SANDBOX.codePath];
}

/** The whole command line for one run. */
export function sandboxCommand(plan: SandboxPlan): Command {
  return {
    command: plan.prlimit,
    args: [
      ...prlimitArgs(plan.limits, plan.timeoutSeconds),
      "--",
      plan.setpriv,
      ...setprivArgs(plan.dropTo),
      "--",
      plan.bwrap,
      ...bwrapArgs(plan),
      "--",
      ...pythonArgs(plan.python),
    ],
  };
}
