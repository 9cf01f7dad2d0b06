/**
 * mcp2's `run_docker` end to end: the launcher's real system, agent_name2 on the SDK client through
 * the proxy, and a real Docker engine (`DOCKER_HOST`; CI starts one with `.ci/docker.sh setup`).
 * The host's own docker CLI checks what really happened on the engine.
 *
 * Without an engine this file fails in CI and is skipped elsewhere.
 */
import { spawnSync } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssertionSigner } from "../../common/assertion.ts";
import { ensureProxyKey } from "../../keys/proxy-key.ts";
import { connectAgent, type Launched, launch, resultText } from "./launcher.ts";

const IMAGE = "mcpcp/busybox";
const TIMEOUT_SECONDS = 3;
const DETACHED_TIMEOUT_SECONDS = 8;
/** A name prefix for this run's containers, so cleanup touches nothing else. */
const RUN = `e2e${Date.now().toString(36)}`;
/** A digest the allow-list names, of an image the engine does not have. */
const LISTED_DIGEST = `sha256:${"d".repeat(64)}`;
/** A tag of the local image made for this run, so the tagless entry has one more to admit. */
const LOCAL_TAG = `${IMAGE}:${RUN}`;

/** Now, as `docker events --since/--until` read it (seconds, fractions allowed). */
const engineNow = () => (Date.now() / 1000).toFixed(3);

/** The host's docker CLI, for setting up and checking behind mcp2's back. */
function host(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync("docker", args, { encoding: "utf8", timeout: 30_000 });
  return { status: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

function managedContainers(): string[] {
  return host("ps", "-aq", "--no-trunc", "--filter", "label=mcpcp.managed=true")
    .stdout.split("\n")
    .filter(Boolean);
}

const probe = host("version", "--format", "{{.Server.Version}}");
const engineUp = probe.status === 0;
const where = process.env.DOCKER_HOST
  ? `DOCKER_HOST=${process.env.DOCKER_HOST}`
  : "the default socket";
if (!engineUp) {
  const why = `no Docker engine answers at ${where}: ${probe.stderr.trim().replace(/\.$/, "") || "docker CLI missing"}`;
  if (process.env.CI && process.env.CI !== "false") {
    throw new Error(`${why}. CI must start one: eval "$(bash .ci/docker.sh setup)"`);
  }
  console.warn(`[docker.e2e] skipped: ${why}. Start one with: eval "$(bash .ci/docker.sh setup)"`);
}

interface Execution {
  argv: string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  ending: string;
  truncated: { stdout: boolean; stderr: boolean };
}

describe.skipIf(!engineUp)("run_docker through the proxy, against a real engine", () => {
  let system: Launched;
  let agent2: Client;
  const clients: Client[] = [];
  /** mcp2's clients by agent, called directly (beyond the proxy's rate limits); afterAll removes their containers. */
  const directClients = new Map<string, Client>();
  const hostContainer = `${RUN}-host`;

  /** Calls mcp2_run_docker as agent_name2 (or `client`). */
  async function docker(command: string, client: Client = agent2) {
    const result = await client.callTool({
      name: client === agent2 ? "mcp2_run_docker" : "run_docker",
      arguments: { command },
    });
    return {
      isError: result.isError === true,
      text: resultText(result),
      execution: result.structuredContent as Execution | undefined,
    };
  }

  /**
   * mcp2 itself, called as the proxy would for `agent`: a fresh proxy assertion per request, signed
   * with the dev proxy key.
   */
  async function direct(agent: string): Promise<Client> {
    const known = directClients.get(agent);
    if (known) return known;
    const signer = await createAssertionSigner((await ensureProxyKey()).signingKey);
    const asProxy: typeof fetch = async (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set("authorization", `Bearer ${await signer.sign(agent, "mcp2")}`);
      return fetch(url, { ...init, headers });
    };
    const client = new Client({ name: `e2e-direct-${agent}`, version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${system.ports.mcp2}/mcp`), {
        fetch: asProxy,
      }),
    );
    clients.push(client);
    directClients.set(agent, client);
    return client;
  }

  beforeAll(async () => {
    // The launcher hands its environment to mcp2: short limits keep the timeout cases quick.
    process.env.MCP2_TIMEOUT_SECONDS = String(TIMEOUT_SECONDS);
    process.env.MCP2_DETACHED_TIMEOUT_SECONDS = String(DETACHED_TIMEOUT_SECONDS);
    process.env.MCP2_ALLOWED_IMAGES = `${IMAGE}, ${IMAGE}@${LISTED_DIGEST}`;
    expect(host("tag", `${IMAGE}:latest`, LOCAL_TAG).status).toBe(0);
    system = await launch();
    agent2 = await connectAgent(system.proxyUrl, "agent_name2");
    clients.push(agent2);
  }, 150_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    if (system?.child.exitCode === null) await system.stop();
    const ours = host("ps", "-aq", "--filter", `name=${RUN}`).stdout.split("\n").filter(Boolean);
    const theirs = [...directClients.keys()].flatMap((agent) =>
      host("ps", "-aq", "--filter", `label=mcpcp.agent=${agent}`).stdout.split("\n"),
    );
    const leftovers = [...ours, ...theirs.filter(Boolean)];
    if (leftovers.length > 0) host("rm", "-f", ...leftovers);
    host("rmi", LOCAL_TAG);
  }, 60_000);

  describe("who sees the tool", () => {
    it("agent_name2 sees mcp2_run_docker, with its command input", async () => {
      const { tools } = await agent2.listTools();
      const tool = tools.find((t) => t.name === "mcp2_run_docker");
      expect(tool?.inputSchema.required).toEqual(["command"]);
      expect(tools.map((t) => t.name)).toEqual(
        expect.arrayContaining(["mcp2_echo", "mcp2_run_docker"]),
      );
    });

    it("agent_name1 neither sees nor may call it, exactly like a tool that does not exist", async () => {
      const agent1 = await connectAgent(system.proxyUrl, "agent_name1");
      clients.push(agent1);
      const { tools } = await agent1.listTools();
      expect(tools.map((t) => t.name)).not.toContain("mcp2_run_docker");
      const before = managedContainers().length;
      await expect(
        agent1.callTool({
          name: "mcp2_run_docker",
          arguments: { command: `run --rm ${IMAGE} echo hi` },
        }),
      ).rejects.toMatchObject({
        code: -32602,
        message: expect.stringContaining("Tool mcp2_run_docker not found"),
      });
      expect(managedContainers()).toHaveLength(before);
    });
  });

  describe("commands that run", () => {
    it("docker version reports the engine", async () => {
      const { isError, execution } = await docker("docker version --format '{{.Server.Version}}'");
      expect(isError).toBe(false);
      expect(execution?.exitCode).toBe(0);
      expect(execution?.stdout.trim()).toBe(probe.stdout.trim());
    });

    it("run --rm echoes hi, confined, and leaves no container behind", async () => {
      const before = managedContainers();
      const { isError, text, execution } = await docker(`run --rm ${IMAGE} echo hi`);
      expect(isError).toBe(false);
      expect(text).toMatch(/^exit code 0 after [0-9.]+ s\n--- stdout ---\nhi\n$/);
      expect(execution).toMatchObject({
        exitCode: 0,
        stdout: "hi\n",
        stderr: "",
        ending: "exited",
      });
      expect(execution?.argv).toEqual(
        expect.arrayContaining([
          "--rm",
          "--network=none",
          "--label=mcpcp.agent=agent_name2",
          IMAGE,
        ]),
      );
      expect(managedContainers()).toEqual(before);
    });

    it("the container really is confined: no network, limited memory and processes", async () => {
      const { execution } = await docker(
        `run --rm ${IMAGE} sh -c 'ls /sys/class/net; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max'`,
      );
      expect(execution?.exitCode).toBe(0);
      expect(execution?.stdout.split("\n").filter(Boolean)).toEqual([
        "lo",
        String(256 * 1024 * 1024),
        "64",
      ]);
    });

    it("a non-zero exit is a tool error carrying both streams", async () => {
      const { isError, execution } = await docker(
        `run --rm ${IMAGE} sh -c 'echo out; echo err >&2; exit 7'`,
      );
      expect(isError).toBe(true);
      expect(execution).toMatchObject({ exitCode: 7, stdout: "out\n", stderr: "err\n" });
    });

    it("a detached run, then its logs, ps, stop and rm by name", async () => {
      const name = `${RUN}-detached`;
      const started = await docker(
        `run -d --name ${name} ${IMAGE} sh -c 'echo started; sleep 600'`,
      );
      expect(started.execution?.exitCode).toBe(0);
      const id = started.execution?.stdout.trim() ?? "";
      expect(id).toMatch(/^[0-9a-f]{64}$/);

      let logs = await docker(`logs ${name}`);
      for (let i = 0; i < 20 && logs.execution?.stdout === ""; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        logs = await docker(`logs ${name}`);
      }
      expect(logs.execution?.stdout).toBe("started\n");

      const ps = await docker("ps --format '{{.Names}} {{.Status}}'");
      expect(ps.execution?.stdout).toMatch(new RegExp(`^${name} Up`, "m"));

      const stopped = await docker(`stop -t 1 ${name}`);
      expect(stopped.execution?.exitCode).toBe(0);
      expect(host("inspect", "-f", "{{.State.Running}}", id).stdout.trim()).toBe("false");

      const removed = await docker(`rm ${id.slice(0, 12)}`);
      expect(removed.execution?.exitCode).toBe(0);
      expect(host("inspect", id).status).not.toBe(0);
    });

    it("exec runs in the caller's own container", async () => {
      const name = `${RUN}-exec`;
      await docker(`run -d --name ${name} ${IMAGE} sleep 600`);
      const { execution } = await docker(`exec ${name} sh -c 'echo inside; echo 42'`);
      expect(execution).toMatchObject({ exitCode: 0, stdout: "inside\n42\n" });
      await docker(`rm -f ${name}`);
    });

    it("a command past its time limit is killed, and its container removed", async () => {
      const before = managedContainers();
      const { isError, text, execution } = await docker(`run --rm ${IMAGE} sleep 600`);
      expect(isError).toBe(true);
      expect(text).toContain(
        `timed out after ${TIMEOUT_SECONDS} s: the command was killed; its container was killed and removed`,
      );
      expect(execution).toMatchObject({ exitCode: null, ending: "timed-out" });
      expect(managedContainers()).toEqual(before);
    });

    it("a detached container is killed and removed after its own time limit", async () => {
      const name = `${RUN}-reaped`;
      const { execution } = await docker(`run -d --name ${name} ${IMAGE} sleep 600`);
      const id = execution?.stdout.trim() ?? "";
      expect(host("inspect", "-f", "{{.State.Running}}", id).stdout.trim()).toBe("true");
      // Deadline, plus one reaper sweep (every 5 s), plus slack.
      const deadline = Date.now() + (DETACHED_TIMEOUT_SECONDS + 10) * 1000;
      while (host("inspect", id).status === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(host("inspect", id).status).not.toBe(0);
    }, 30_000);

    it("caps long output with a visible marker", async () => {
      const { execution, text } = await docker(
        `run --rm ${IMAGE} sh -c 'yes 0123456789 | head -c 100000'`,
      );
      expect(execution?.exitCode).toBe(0);
      expect(execution?.truncated).toEqual({ stdout: true, stderr: false });
      expect(execution?.stdout).toMatch(
        /\n\[mcp2: output truncated at 32768 bytes; 67232 more bytes not shown\]$/,
      );
      expect(text).toContain("more bytes not shown]");
    });
  });

  describe("abuse", () => {
    it.each([
      [`run --rm ${IMAGE} echo hi; rm -rf /`, /shell operator ";"/],
      [`run --rm ${IMAGE} echo $(id)`, /substitution/],
      [`run --rm ${IMAGE} echo \`id\``, /substitution/],
      ["ps | cat", /shell operator "\|"/],
      [`run --rm ${IMAGE} true && rm -rf /`, /shell operator "&&"/],
      [`run --rm --privileged ${IMAGE} true`, /--privileged is not allowed/],
      [`run --rm -v /:/host ${IMAGE} cat /host/etc/shadow`, /-v is not allowed/],
      [`run --rm --mount type=bind,source=/,target=/host ${IMAGE} true`, /--mount is not allowed/],
      [`run --rm --network host ${IMAGE} true`, /--network must be none/],
      [`run --rm --pid host ${IMAGE} true`, /--pid is not allowed/],
      [`run --rm --cap-add SYS_ADMIN ${IMAGE} true`, /--cap-add is not allowed/],
      [`run --rm --device /dev/mem ${IMAGE} true`, /--device is not allowed/],
      [
        "system prune -af",
        /"docker system" is not allowed\. Allowed subcommands: version, info, ps/,
      ],
      [`run --rm alpine true`, /image "alpine" is not allowed/],
      [`-H tcp://127.0.0.1:2375 run --rm ${IMAGE} true`, /global docker options/],
      [`run --rm --label mcpcp.agent=agent_name1 ${IMAGE} true`, /may not set mcpcp/],
    ])("refuses %s, and nothing runs", async (command, reason) => {
      const before = managedContainers();
      const { isError, text, execution } = await docker(command);
      expect(isError).toBe(true);
      expect(text).toMatch(/^Refused, nothing was run: /);
      expect(text).toMatch(reason);
      expect(execution).toBeUndefined();
      expect(managedContainers()).toEqual(before);
    });
  });

  describe("images: only what the engine has, never pulled", () => {
    /**
     * The engine's events since `since` that touch `image`: any image event (a pull, a tag), and
     * container events for that image. Others' containers on a shared engine do not count.
     */
    function eventsSince(since: string, image: string): string[] {
      const listed = host(
        "events",
        "--since",
        since,
        "--until",
        engineNow(),
        "--format",
        '{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "image"}}',
      );
      expect(listed.status).toBe(0);
      return listed.stdout
        .split("\n")
        .filter((event) => event.startsWith("image ") || event.endsWith(` ${image}`));
    }

    it("refuses a tag the engine lacks before anything runs, and pulls nothing", async () => {
      const since = engineNow();
      const { isError, text, execution } = await docker(`run --rm ${IMAGE}:nope true`);
      expect(isError).toBe(true);
      expect(text).toBe(
        `Refused, nothing was run: the image "${IMAGE}:nope" is not on this Docker engine, and ` +
          `mcp2 never pulls. Allowed images: ${IMAGE} (tags this engine already has), ` +
          `${IMAGE}@${LISTED_DIGEST}`,
      );
      expect(execution).toBeUndefined();
      // No pull, no container: the engine saw nothing happen at all.
      expect(eventsSince(since, `${IMAGE}:nope`)).toEqual([]);
      expect(host("image", "inspect", `${IMAGE}:nope`).status).not.toBe(0);
    });

    it("refuses a digest the allow-list does not name, though its repo is listed", async () => {
      const since = engineNow();
      const other = `${IMAGE}@sha256:${"e".repeat(64)}`;
      const { isError, text, execution } = await docker(`run --rm ${other} true`);
      expect(isError).toBe(true);
      expect(text).toMatch(
        new RegExp(`^Refused, nothing was run: the image "${other}" is not allowed: only digests`),
      );
      expect(execution).toBeUndefined();
      expect(eventsSince(since, other)).toEqual([]);
    });

    it("asks the engine for a listed digest with --pull=never: no such image, no pull", async () => {
      const since = engineNow();
      const { isError, execution } = await docker(`run --rm ${IMAGE}@${LISTED_DIGEST} true`);
      expect(isError).toBe(true);
      expect(execution?.argv).toContain("--pull=never");
      expect(execution?.stderr).toMatch(/No such image/);
      // What the CLI prints when it is about to pull.
      expect(execution?.stderr).not.toMatch(/Unable to find image|Pulling/);
      expect(eventsSince(since, `${IMAGE}@${LISTED_DIGEST}`)).toEqual([]);
    });

    it("runs a tag the engine has, under a tagless entry, with --pull=never", async () => {
      const { isError, execution } = await docker(`run --rm ${LOCAL_TAG} echo local`);
      expect(isError).toBe(false);
      expect(execution).toMatchObject({ exitCode: 0, stdout: "local\n" });
      expect(execution?.argv).toEqual(expect.arrayContaining(["--pull=never", LOCAL_TAG]));
    });

    it("lists the local tags the allow-list admits", async () => {
      const { execution } = await docker("images --format '{{.Repository}}:{{.Tag}}'");
      expect(execution?.exitCode).toBe(0);
      expect(execution?.stdout.split("\n")).toEqual(
        expect.arrayContaining([`${IMAGE}:latest`, LOCAL_TAG]),
      );
    });
  });

  describe("ownership", () => {
    it("the host's own containers are invisible and untouchable", async () => {
      const started = host("run", "-d", "--name", hostContainer, IMAGE, "sleep", "600");
      expect(started.status).toBe(0);
      const id = started.stdout.trim();

      const ps = await docker("ps -a --no-trunc --format '{{.ID}} {{.Names}}'");
      expect(ps.execution?.stdout).not.toContain(id);
      expect(ps.execution?.stdout).not.toContain(hostContainer);
      for (const command of [
        `stop ${hostContainer}`,
        `rm -f ${hostContainer}`,
        `logs ${id}`,
        `inspect ${id.slice(0, 12)}`,
        `exec ${hostContainer} cat /etc/hostname`,
      ]) {
        const ref = command.split(" ").filter((w) => !w.startsWith("-"))[1];
        const { isError, text } = await docker(command);
        expect(isError).toBe(true);
        expect(text).toBe(`Error: No such container: ${ref}`);
      }
      expect(host("inspect", "-f", "{{.State.Running}}", id).stdout.trim()).toBe("true");
    });

    it("another agent's container is invisible to agent_name2, and the reverse", async () => {
      const intruder = await direct("intruder");
      const name = `${RUN}-intruder`;
      const theirs = await docker(`run -d --name ${name} ${IMAGE} sleep 600`, intruder);
      expect(theirs.execution?.exitCode).toBe(0);
      const theirId = theirs.execution?.stdout.trim() ?? "";

      const ps = await docker("ps -a --no-trunc -q");
      expect(ps.execution?.stdout).not.toContain(theirId);
      for (const command of [
        `stop ${name}`,
        `rm -f ${theirId}`,
        `logs ${name}`,
        `inspect ${name}`,
        `exec ${name} id`,
      ]) {
        const { text } = await docker(command);
        expect(text).toMatch(/^Error: No such container: /);
      }
      expect(host("inspect", "-f", "{{.State.Running}}", theirId).stdout.trim()).toBe("true");

      const mine = await docker(`run -d --name ${RUN}-mine ${IMAGE} sleep 600`);
      const myId = mine.execution?.stdout.trim() ?? "";
      const seen = await docker("ps -a --no-trunc -q", intruder);
      expect(seen.execution?.stdout.trim()).toBe(theirId);
      expect((await docker(`rm -f ${RUN}-mine`, intruder)).text).toBe(
        `Error: No such container: ${RUN}-mine`,
      );
      expect(host("inspect", "-f", "{{.State.Running}}", myId).stdout.trim()).toBe("true");

      await docker(`rm -f ${name}`, intruder);
      await docker(`rm -f ${RUN}-mine`);
    });
  });

  describe("engine-wide facts: only what concerns the caller", () => {
    /** What `docker info` tells the host about itself, none of which an agent may read. */
    function hostFacts(): string[] {
      const info = JSON.parse(host("info", "--format", "{{json .}}").stdout) as Record<
        string,
        unknown
      >;
      const version = JSON.parse(host("version", "--format", "{{json .}}").stdout) as {
        Server: Record<string, string>;
      };
      const facts = [
        info.Name,
        info.ID,
        info.KernelVersion,
        info.OperatingSystem,
        info.DockerRootDir,
        String(info.MemTotal),
        version.Server.GoVersion,
        version.Server.GitCommit,
        version.Server.BuildTime,
      ];
      for (const fact of facts) expect(typeof fact === "string" && fact !== "").toBe(true);
      return facts as string[];
    }

    /** Fails if `text` holds any of `facts` as a word of its own (a host name can be short). */
    function expectNone(facts: string[], text: string) {
      for (const fact of facts) {
        const word = fact.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
        expect(text).not.toMatch(new RegExp(`(^|[^A-Za-z0-9])${word}($|[^A-Za-z0-9])`));
      }
    }

    it("docker info shows the caller's own containers, its images and the server version", async () => {
      const viewer = await direct("viewer");
      // Containers as mcp2 labels them, made behind its back so that the reaper (8 s here) does
      // not race the test: one running, one paused, one never started, and another agent's.
      const deadline = `mcpcp.deadline=${Math.floor(Date.now() / 1000) + 600}`;
      const owned = (agent: string, name: string, verb: "run" | "create") => {
        const labels = ["mcpcp.managed=true", `mcpcp.agent=${agent}`, deadline];
        const args = [verb, ...(verb === "run" ? ["-d"] : []), "--name", `${RUN}-${name}`];
        const made = host(...args, ...labels.flatMap((l) => ["--label", l]), IMAGE, "sleep", "600");
        expect(made.status).toBe(0);
        return made.stdout.trim();
      };
      owned("viewer", "info-running", "run");
      expect(host("pause", owned("viewer", "info-paused", "run")).status).toBe(0);
      owned("viewer", "info-stopped", "create");
      owned("intruder", "info-other", "run");

      const images = new Set(
        host("images", "--no-trunc", "--format", "{{.ID}}", "--filter", `reference=${IMAGE}`)
          .stdout.split("\n")
          .filter(Boolean),
      );
      const json = await docker("info --format '{{json .}}'", viewer);
      expect(json.isError).toBe(false);
      expect(JSON.parse(json.execution?.stdout ?? "")).toEqual({
        Containers: 3,
        ContainersRunning: 1,
        ContainersPaused: 1,
        ContainersStopped: 1,
        Images: images.size,
        ServerVersion: probe.stdout.trim(),
      });
      expect((await docker("info --format json", viewer)).execution?.stdout).toBe(
        json.execution?.stdout,
      );
      const counts = await docker(
        "info -f '{{.Containers}}/{{ .ContainersRunning }} {{.ServerVersion}}'",
        viewer,
      );
      expect(counts.execution?.stdout).toBe(`3/1 ${probe.stdout.trim()}\n`);

      const plain = await docker("docker info", viewer);
      expect(plain.isError).toBe(false);
      expect(plain.execution?.stdout).toMatch(
        /^Server:\n Containers: 3\n {2}Running: 1\n {2}Paused: 1\n {2}Stopped: 1\n Images: [0-9]+\n Server Version: /,
      );
      for (const answer of [plain, json, counts]) expectNone(hostFacts(), answer.text);
    });

    it.each([
      "{{.Name}}",
      "{{.KernelVersion}}",
      "{{.OperatingSystem}}",
      "{{.DockerRootDir}}",
      "{{.NCPU}} {{.MemTotal}}",
      "{{json .RegistryConfig}}",
      "{{range .Plugins.Log}}{{.}}{{end}}",
      '{{index . "Name"}}',
      '{{.ServerVersion | printf "%s"}}',
    ])("docker info --format %s cannot reach past that view", async (template) => {
      const { isError, text, execution } = await docker(
        `info --format '${template}'`,
        await direct("viewer"),
      );
      expect(isError).toBe(true);
      expect(text).toMatch(/^Refused, nothing was run: --format: /);
      expect(execution).toBeUndefined();
      expectNone(hostFacts(), text);
    });

    it("docker version shows the versions and the platform, not the host's build or kernel", async () => {
      const real = JSON.parse(host("version", "--format", "{{json .}}").stdout) as {
        Client: Record<string, string>;
        Server: Record<string, string>;
      };
      const viewer = await direct("viewer");
      const json = await docker("version --format '{{json .}}'", viewer);
      expect(json.isError).toBe(false);
      expect(JSON.parse(json.execution?.stdout ?? "")).toEqual({
        Client: { Version: real.Client.Version, ApiVersion: real.Client.ApiVersion },
        Server: {
          Version: real.Server.Version,
          ApiVersion: real.Server.ApiVersion,
          MinAPIVersion: real.Server.MinAPIVersion,
          Os: real.Server.Os,
          Arch: real.Server.Arch,
        },
      });
      const plain = await docker("version", viewer);
      expect(plain.execution?.stdout).toContain(`  Version:          ${real.Server.Version}\n`);
      const refusedKernel = await docker("version -f '{{.Server.KernelVersion}}'", viewer);
      expect(refusedKernel.text).toMatch(/^Refused, nothing was run: --format: /);
      const facts = [...hostFacts(), real.Client.GoVersion ?? "", real.Client.GitCommit ?? ""];
      for (const answer of [plain, json, refusedKernel]) expectNone(facts, answer.text);
    });

    it("docker system info is refused, not answered", async () => {
      const { text } = await docker("system info", await direct("viewer"));
      expect(text).toMatch(/^Refused, nothing was run: "docker system" is not allowed/);
    });
  });

  describe("container names are per agent", () => {
    it("two agents each have their own web, and neither learns the other's id", async () => {
      const me = await direct("namer");
      const other = await direct("intruder");
      const name = `${RUN}-web`;
      const theirs = await docker(`run -d --name ${name} ${IMAGE} sleep 600`, other);
      expect(theirs.isError).toBe(false);
      const theirId = theirs.execution?.stdout.trim() ?? "";
      expect(theirId).toMatch(/^[0-9a-f]{64}$/);
      const everything: string[] = [];
      const seen = async (command: string) => {
        const answer = await docker(command, me);
        everything.push(answer.text, JSON.stringify(answer.execution ?? {}));
        return answer;
      };

      const mine = await seen(`run -d --name ${name} ${IMAGE} sh -c 'echo mine; sleep 600'`);
      expect(mine.isError).toBe(false);
      const myId = mine.execution?.stdout.trim() ?? "";
      expect(myId).toMatch(/^[0-9a-f]{64}$/);
      expect(myId).not.toBe(theirId);
      // The engine's own name for it is not what the agent asked for (one namespace per agent).
      const engineName = host("inspect", "-f", "{{.Name}}", myId).stdout.trim();
      expect(engineName).not.toBe(`/${name}`);

      const ps = await seen("ps -a --no-trunc --format '{{.ID}} {{.Names}}'");
      expect(ps.execution?.stdout.trim().split("\n")).toContain(`${myId} ${name}`);
      const filtered = await seen(`ps -q --no-trunc --filter name=^${name}`);
      expect(filtered.execution?.stdout).toBe(`${myId}\n`);
      expect(
        (await seen(`ps -q --no-trunc --filter name=${name.slice(3)}`)).execution?.stdout,
      ).toBe(`${myId}\n`);
      expect((await seen(`ps -aq --filter name=^${name.slice(3)}`)).execution?.stdout).toBe("");
      const theirPs = await docker("ps -a --no-trunc --format '{{.ID}} {{.Names}}'", other);
      expect(theirPs.execution?.stdout.split("\n")).toContain(`${theirId} ${name}`);
      expect(theirPs.execution?.stdout).not.toContain(myId);

      const inspected = await seen(`inspect -f '{{.Id}} {{.Name}}' ${name}`);
      expect(inspected.execution?.stdout).toBe(`${myId} /${name}\n`);
      const whole = await seen(`inspect ${name}`);
      expect(JSON.parse(whole.execution?.stdout ?? "")[0]).toMatchObject({
        Id: myId,
        Name: `/${name}`,
      });

      let logs = await seen(`logs ${name}`);
      for (let i = 0; i < 20 && logs.execution?.stdout === ""; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        logs = await seen(`logs ${name}`);
      }
      expect(logs.execution?.stdout).toBe("mine\n");
      expect((await seen(`exec ${name} echo inside`)).execution?.stdout).toBe("inside\n");

      // A second web of the caller's own clashes with the first: that one it may hear about.
      const again = await seen(`run -d --name ${name} ${IMAGE} sleep 600`);
      expect(again.isError).toBe(true);
      expect(again.execution?.stderr).toContain(
        `The container name "/${name}" is already in use by container "${myId}"`,
      );

      expect((await seen(`stop -t 0 ${name}`)).isError).toBe(false);
      expect((await seen(`rm ${name}`)).isError).toBe(false);
      expect(host("inspect", myId).status).not.toBe(0);
      expect(host("inspect", "-f", "{{.State.Running}}", theirId).stdout.trim()).toBe("true");
      // Gone for the caller, though the other agent's web still runs.
      for (const command of ["logs", "stop", "rm -f", "inspect"]) {
        expect((await seen(`${command} ${name}`)).text).toBe(`Error: No such container: ${name}`);
      }

      for (const text of everything) {
        expect(text).not.toContain(theirId);
        expect(text).not.toContain(theirId.slice(0, 12));
        expect(text).not.toContain(engineName.slice(1));
      }
      await docker(`rm -f ${name}`, other);
    });

    it("a name taken on the engine by a container not the caller's does not reveal it", async () => {
      const me = await direct("namer");
      const name = `${RUN}-taken`;
      const probeRun = await docker(`run -d --name ${name} ${IMAGE} sleep 600`, me);
      const probeId = probeRun.execution?.stdout.trim() ?? "";
      const engineName = host("inspect", "-f", "{{.Name}}", probeId).stdout.trim().slice(1);
      await docker(`rm -f ${name}`, me);
      // The host takes the very name the engine would give the caller's next web.
      const hostRun = host("run", "-d", "--name", engineName, IMAGE, "sleep", "600");
      expect(hostRun.status).toBe(0);
      const hostId = hostRun.stdout.trim();

      const { isError, text } = await docker(`run -d --name ${name} ${IMAGE} sleep 600`, me);
      expect(isError).toBe(true);
      expect(text).toContain(
        `The container name "/${name}" is already in use by a container that is not yours`,
      );
      expect(text).not.toContain(hostId.slice(0, 12));
      expect(text).not.toContain(engineName);
      host("rm", "-f", hostId);
    });
  });
});
