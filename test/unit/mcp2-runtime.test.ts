/**
 * mcp2 around its policy, without a Docker engine: ownership resolution, output capping, deadlines,
 * and the whole tool against fake docker CLIs (a shell script that records its argv), so the flow
 * is checked everywhere (the real engine is the e2e suite's job).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AssertionSigner, createAssertionSigner } from "../../common/assertion.ts";
import { type RunningBackend, startBackend } from "../../local-backends/common/backend.ts";
import { createMcp2 } from "../../local-backends/mcp2/backend.ts";
import { DEFAULT_CONFIG, type Mcp2Config } from "../../local-backends/mcp2/config.ts";
import { expiredContainers } from "../../local-backends/mcp2/engine.ts";
import {
  agentName,
  engineName,
  engineNameFilter,
  namePrefix,
  withAgentNames,
  withoutForeignHolder,
} from "../../local-backends/mcp2/names.ts";
import { CappedOutput } from "../../local-backends/mcp2/output.ts";
import {
  type OwnedContainer,
  parseOwned,
  resolveOwned,
} from "../../local-backends/mcp2/ownership.ts";
import { runDocker } from "../../local-backends/mcp2/run-docker.ts";

const MINE = `a1${"0".repeat(62)}`;
const MINE_TOO = `a2${"0".repeat(62)}`;
const THEIRS = "b".repeat(64);

describe("ownership", () => {
  const owned: OwnedContainer[] = [
    { id: MINE, names: ["web"], agent: "agent_a", state: "running" },
    { id: MINE_TOO, names: ["db"], agent: "agent_a", state: "exited" },
  ];

  it("resolves a name, a full ID and a unique ID prefix to full IDs", () => {
    expect(resolveOwned(["web", MINE_TOO, "a1"], owned)).toEqual({
      ok: true,
      ids: [MINE, MINE_TOO, MINE],
    });
  });

  it("answers another agent's container exactly like one that does not exist", () => {
    const theirs = resolveOwned([THEIRS], owned);
    const nobody = resolveOwned(["c".repeat(64)], owned);
    expect(theirs).toEqual({ ok: false, reason: `No such container: ${THEIRS}` });
    expect(nobody).toEqual({ ok: false, reason: `No such container: ${"c".repeat(64)}` });
    expect(resolveOwned(["bbb"], owned)).toEqual({ ok: false, reason: "No such container: bbb" });
  });

  it("refuses an ambiguous prefix among the caller's own containers only", () => {
    expect(resolveOwned(["a"], owned)).toEqual({
      ok: false,
      reason: '"a" matches 2 of your containers; use more of the ID or the name',
    });
  });

  it("keeps only rows labelled with the caller, whatever the engine's filter returned", () => {
    const listing = [
      `${MINE}\t${engineName("agent_a", "web")}\tagent_a\trunning`,
      `${THEIRS}\tother\tagent_b\trunning`,
      "garbage",
      `${MINE_TOO}\tdb,alias\tagent_a\texited`,
    ].join("\n");
    expect(parseOwned(listing, "agent_a")).toEqual([
      { id: MINE, names: ["web"], agent: "agent_a", state: "running" },
      { id: MINE_TOO, names: ["db", "alias"], agent: "agent_a", state: "exited" },
    ]);
  });

  it("refuses a name two of the caller's containers answer to (one named by Docker)", () => {
    const twice: OwnedContainer[] = [
      { id: MINE, names: ["quirky_bell"], agent: "agent_a", state: "running" },
      { id: MINE_TOO, names: ["quirky_bell"], agent: "agent_a", state: "running" },
    ];
    expect(resolveOwned(["quirky_bell"], twice)).toEqual({
      ok: false,
      reason: '"quirky_bell" names 2 of your containers; use the ID',
    });
    expect(resolveOwned([MINE_TOO], twice)).toEqual({ ok: true, ids: [MINE_TOO] });
  });
});

describe("names: one namespace per agent", () => {
  it("gives each agent its own prefix, one length for all", () => {
    const a = namePrefix("agent_a");
    const b = namePrefix("agent:b@x");
    expect(a).toMatch(/^mcpcp-[0-9a-f]{16}-$/);
    expect(b).toMatch(/^mcpcp-[0-9a-f]{16}-$/);
    expect(a).not.toBe(b);
    expect(engineName("agent_a", "web")).toBe(`${a}web`);
    expect(agentName("agent_a", `${a}web`)).toBe("web");
    // Another agent's name is not in this namespace: it stays as the engine has it.
    expect(agentName("agent_a", `${b}web`)).toBe(`${b}web`);
  });

  it("takes the caller's prefix off names in output, only where a name begins", () => {
    const a = namePrefix("agent_a");
    const text = `"Name": "/${a}web",\n${a}db\tx-${a}kept --name=${a}web`;
    expect(withAgentNames("agent_a", text)).toBe(`"Name": "/web",\ndb\tx-${a}kept --name=web`);
    expect(withAgentNames("agent_b", text)).toBe(text);
  });

  it("rewrites a ps name filter into the caller's namespace", () => {
    const a = namePrefix("agent_a");
    expect(engineNameFilter("agent_a", "web")).toBe(`^/${a}.*web`);
    expect(engineNameFilter("agent_a", "^web")).toBe(`^/${a}web`);
    expect(engineNameFilter("agent_a", "^/web")).toBe(`^/${a}web`);
    expect(engineNameFilter("agent_a", "/web")).toBe(`^/${a}web`);
  });

  it("keeps a name conflict's holder only when it is the caller's own", () => {
    const conflict = (id: string) =>
      `docker: Error response from daemon: Conflict. The container name "/web" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.\n`;
    expect(withoutForeignHolder(conflict(MINE), [MINE])).toBe(conflict(MINE));
    expect(withoutForeignHolder(conflict(THEIRS), [MINE])).toBe(
      'docker: Error response from daemon: Conflict. The container name "/web" is already in use by a container that is not yours; choose another name.\n',
    );
  });
});

describe("CappedOutput", () => {
  it("keeps everything under the limit", () => {
    const out = new CappedOutput(10);
    out.push(Buffer.from("hello "));
    out.push(Buffer.from("you"));
    expect(out.result()).toEqual({ text: "hello you", truncated: false, droppedBytes: 0 });
  });

  it("keeps the first bytes, counts the rest and says so visibly", () => {
    const out = new CappedOutput(8);
    out.push(Buffer.from("0123456"));
    out.push(Buffer.from("789abcdef"));
    out.push(Buffer.from("ghij"));
    expect(out.result()).toEqual({
      text: "01234567\n[mcp2: output truncated at 8 bytes; 12 more bytes not shown]",
      truncated: true,
      droppedBytes: 12,
    });
  });

  it("never shows half a UTF-8 character at the cut", () => {
    const out = new CappedOutput(4);
    out.push(Buffer.from("abcé")); // é is two bytes: the cut falls inside it
    expect(out.result().text.startsWith("abc\n[mcp2: output truncated")).toBe(true);
  });
});

describe("expiredContainers", () => {
  it("picks containers past their deadline, and any without a readable one", () => {
    const listing = [
      `${MINE}\t100`,
      `${MINE_TOO}\t300`,
      `${THEIRS}\t`,
      `${"c".repeat(64)}\tsoon`,
      "junk\t1",
    ].join("\n");
    expect(expiredContainers(listing, 200)).toEqual([MINE, THEIRS, "c".repeat(64)]);
  });
});

/** A fake docker CLI: a shell script that appends its argv to calls.log and runs `body`. */
function fakeCli(dir: string, body: string): string {
  const path = join(dir, `docker-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, `#!/bin/sh\necho "$*" >> ${join(dir, "calls.log")}\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe("run_docker against fake CLIs", () => {
  let dir: string;
  const calls = () => {
    try {
      return readFileSync(join(dir, "calls.log"), "utf8").trim().split("\n");
    } catch {
      return [];
    }
  };
  const text = (result: { content: unknown[] }) =>
    (result.content as { text?: string }[]).map((c) => c.text ?? "").join("");

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "mcp2-fake-"));
  });
  afterEach(() => rmSync(join(dir, "calls.log"), { force: true }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A CLI whose engine answers; `ps` lists one container of agent_a and (wrongly) one of agent_b. */
  function engineWith(extra: Partial<Mcp2Config> = {}) {
    const cli = fakeCli(
      dir,
      `case "$1" in
  version) echo 20.10.24 ;;
  ps) printf '%s\\tweb\\tagent_a\\n%s\\tother\\tagent_b\\n' ${MINE} ${THEIRS} ;;
  *) echo "ran $1" ;;
esac`,
    );
    const config = { ...DEFAULT_CONFIG, dockerCli: cli, ...extra };
    const { engine } = createMcp2(config, { PATH: process.env.PATH });
    return { config, engine, starting: new Map<string, number>() };
  }

  it("acts on the caller's container by full ID", async () => {
    const result = await runDocker("logs --tail 5 web", "agent_a", engineWith());
    expect(result.isError).toBe(false);
    expect(calls().at(-1)).toBe(`logs --tail=5 ${MINE}`);
  });

  it("never reaches another agent's container, and says it does not exist", async () => {
    const deps = engineWith();
    for (const ref of ["other", THEIRS, "bbbb"]) {
      const result = await runDocker(`rm -f ${ref}`, "agent_a", deps);
      expect(result.isError).toBe(true);
      expect(text(result)).toBe(`Error: No such container: ${ref}`);
    }
    expect(calls().filter((call) => call.startsWith("rm"))).toEqual([]);
  });

  it("refuses a run past the per-agent container limit without starting it", async () => {
    const result = await runDocker(
      "run --rm mcpcp/busybox true",
      "agent_a",
      engineWith({ maxContainersPerAgent: 1 }),
    );
    expect(text(result)).toMatch(
      /^Refused, nothing was run: you have 1 containers and the limit is 1/,
    );
    expect(calls().filter((call) => call.startsWith("run"))).toEqual([]);
  });

  it("runs nothing at all for a refused command", async () => {
    const result = await runDocker("run --privileged mcpcp/busybox sh", "agent_a", engineWith());
    expect(text(result)).toMatch(/^Refused, nothing was run: --privileged is not allowed/);
    expect(calls()).toEqual([]);
  });

  it("runs a tag a tagless entry admits only once the engine says it has it, never pulling", async () => {
    const cli = fakeCli(
      dir,
      `case "$1" in
  version) echo 20.10.24 ;;
  image) [ "$4" = mcpcp/busybox:here ] && echo sha256:1 && exit 0
         echo "Error response from daemon: No such image: $4" >&2; exit 1 ;;
  ps) ;;
  *) echo "ran $1" ;;
esac`,
    );
    const config = { ...DEFAULT_CONFIG, dockerCli: cli };
    const deps = { config, engine: createMcp2(config, { PATH: process.env.PATH }).engine };

    const missing = await runDocker("run --rm mcpcp/busybox:nope true", "agent_a", {
      ...deps,
      starting: new Map(),
    });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toBe(
      'Refused, nothing was run: the image "mcpcp/busybox:nope" is not on this Docker engine, ' +
        "and mcp2 never pulls. Allowed images: mcpcp/busybox (tags this engine already has)",
    );
    expect(calls().filter((call) => !call.startsWith("version"))).toEqual([
      "image inspect --format={{.Id}} mcpcp/busybox:nope",
    ]);

    rmSync(join(dir, "calls.log"), { force: true });
    const present = await runDocker("run --rm mcpcp/busybox:here true", "agent_a", {
      ...deps,
      starting: new Map(),
    });
    expect(present.isError).toBe(false);
    const run = calls().find((call) => call.startsWith("run "));
    expect(run).toMatch(/^run --rm --pull=never --network=none .* mcpcp\/busybox:here true$/);
  });

  it("caps output and returns a non-zero exit as a tool error with both streams", async () => {
    const cli = fakeCli(
      dir,
      'case "$1" in version) echo 1 ;; *) yes x | head -c 5000; echo oops >&2; exit 3 ;; esac',
    );
    const deps = {
      config: { ...DEFAULT_CONFIG, dockerCli: cli, outputLimitBytes: 300 },
      starting: new Map<string, number>(),
    };
    const result = await runDocker("images", "agent_a", {
      ...deps,
      engine: createMcp2(deps.config, { PATH: process.env.PATH }).engine,
    });
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toMatchObject({
      exitCode: 3,
      stderr: "oops\n",
      ending: "exited",
      truncated: { stdout: true, stderr: false },
    });
    expect(text(result)).toMatch(
      /^exit code 3 after [0-9.]+ s\n--- stdout ---\n(x\n){150}\n\[mcp2: output truncated at 300 bytes; 4700 more bytes not shown\]\n--- stderr ---\noops/,
    );
  });
});

describe("mcp2 with no engine", () => {
  let dir: string;
  let backend: RunningBackend | undefined;
  let client: Client | undefined;
  // mcp2 as runBackend starts it: it learns the agent only from the proxy's assertion.
  let proxyJwk: JWK;
  let signer: AssertionSigner;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "mcp2-down-"));
    const pair = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    proxyJwk = { ...(await exportJWK(pair.publicKey)), kid: "test-proxy" };
    signer = await createAssertionSigner({
      ...(await exportJWK(pair.privateKey)),
      kid: "test-proxy",
    });
  });
  afterEach(async () => {
    await client?.close();
    await backend?.close();
    client = undefined;
    backend = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function start(dockerCli: string) {
    const { definition } = createMcp2(
      { ...DEFAULT_CONFIG, dockerCli },
      { PATH: process.env.PATH, DOCKER_HOST: "unix:///nowhere/docker.sock" },
    );
    backend = await startBackend({
      ...definition,
      port: 0,
      proxyKeys: { jwks: { keys: [proxyJwk] } },
    });
    const asProxy: typeof fetch = async (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set("authorization", `Bearer ${await signer.sign("agent_a", "mcp2")}`);
      return fetch(url, { ...init, headers });
    };
    client = new Client({ name: "mcp2-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${backend.url}/mcp`), { fetch: asProxy }),
    );
    return { backend, client };
  }

  // What the docker CLI says when its engine is not there.
  const unreachable =
    'echo "Cannot connect to the Docker daemon at unix:///nowhere/docker.sock. Is the docker daemon running?" >&2; exit 1';

  it("still starts, lists run_docker, and reports degraded health naming DOCKER_HOST", async () => {
    const { backend, client } = await start(fakeCli(dir, unreachable));
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(["echo", "run_docker"]);
    expect(tools[1]?.inputSchema.required).toEqual(["command"]);
    const health = await (await fetch(`${backend.url}/healthz`)).json();
    expect(health).toEqual({
      status: "degraded",
      server: "mcp2",
      reason:
        "Docker engine not reachable at DOCKER_HOST=unix:///nowhere/docker.sock: Cannot connect to the " +
        "Docker daemon at unix:///nowhere/docker.sock. Is the docker daemon running?",
    });
  });

  it("answers run_docker with a tool error naming DOCKER_HOST, and echo still works", async () => {
    const { client } = await start(fakeCli(dir, unreachable));
    const result = await client.callTool({
      name: "run_docker",
      arguments: { command: "docker version" },
    });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain(
      "Docker engine not reachable at DOCKER_HOST=unix:///nowhere/docker.sock",
    );
    const echo = await client.callTool({ name: "echo", arguments: { message: "hi" } });
    expect(echo.content).toEqual([{ type: "text", text: "Echo: hi" }]);
  });

  it("names MCP2_DOCKER_CLI when the CLI itself is missing", async () => {
    const { client } = await start(join(dir, "no-such-docker"));
    const result = await client.callTool({ name: "run_docker", arguments: { command: "ps" } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toMatch(
      /cannot be started \(ENOENT\); install it or set MCP2_DOCKER_CLI/,
    );
  });
});
