/** mcp2's configuration from the environment: defaults, and errors that name the variable. */
import { describe, expect, it } from "vitest";
import {
  DEFAULT_CONFIG,
  parseConfig,
  sizeInBytes,
  splitImage,
} from "../../local-backends/mcp2/config.ts";

describe("parseConfig", () => {
  it("uses the defaults when nothing is set, or set empty", () => {
    expect(parseConfig({})).toEqual({ ok: true, config: DEFAULT_CONFIG });
    expect(parseConfig({ MCP2_MEMORY: "", MCP2_NETWORK: "  " })).toEqual({
      ok: true,
      config: DEFAULT_CONFIG,
    });
    expect(DEFAULT_CONFIG.allowedImages).toEqual(["mcpcp/busybox"]);
    expect(DEFAULT_CONFIG.network).toBe("none");
  });

  it("reads every variable", () => {
    const result = parseConfig({
      MCP2_ALLOWED_IMAGES: "mcpcp/busybox, registry.local:5000/tools/jq:1.7 alpine:3.20",
      MCP2_MEMORY: "512m",
      MCP2_CPUS: "0.5",
      MCP2_PIDS_LIMIT: "128",
      MCP2_NETWORK: "sandbox",
      MCP2_ALLOW_PUBLISH: "true",
      MCP2_TIMEOUT_SECONDS: "20",
      MCP2_DETACHED_TIMEOUT_SECONDS: "600",
      MCP2_MAX_CONTAINERS: "3",
      MCP2_OUTPUT_LIMIT_BYTES: "4096",
      MCP2_LOG_MAX_SIZE: "none",
      MCP2_DOCKER_CLI: "/usr/bin/docker",
    });
    expect(result).toEqual({
      ok: true,
      config: {
        allowedImages: ["mcpcp/busybox", "registry.local:5000/tools/jq:1.7", "alpine:3.20"],
        memory: "512m",
        cpus: "0.5",
        pidsLimit: 128,
        network: "sandbox",
        allowPublish: true,
        timeoutSeconds: 20,
        detachedTimeoutSeconds: 600,
        maxContainersPerAgent: 3,
        outputLimitBytes: 4096,
        logMaxSize: undefined,
        dockerCli: "/usr/bin/docker",
      },
    });
  });

  it.each([
    [
      "MCP2_ALLOWED_IMAGES",
      "mcpcp/*",
      /MCP2_ALLOWED_IMAGES must list image references.*not: mcpcp\/\*/,
    ],
    ["MCP2_ALLOWED_IMAGES", "Upper/Case", /MCP2_ALLOWED_IMAGES/],
    ["MCP2_ALLOWED_IMAGES", "mcpcp/busybox@sha256:ab", /not: mcpcp\/busybox@sha256:ab, got/],
    ["MCP2_ALLOWED_IMAGES", `mcpcp/busybox@md5:${"a".repeat(32)}`, /MCP2_ALLOWED_IMAGES/],
    [
      "MCP2_ALLOWED_IMAGES",
      `mcpcp/busybox:1.36@sha256:${"a".repeat(64)}`,
      /repo@sha256:<64 hex digits>.*not: mcpcp\/busybox:1\.36@sha256:/,
    ],
    ["MCP2_MEMORY", "lots", /MCP2_MEMORY must be a size such as 256m or 1g, got "lots"/],
    ["MCP2_MEMORY", "1m", /MCP2_MEMORY must be at least 6m/],
    ["MCP2_CPUS", "0", /MCP2_CPUS must be a number of CPUs above 0/],
    ["MCP2_CPUS", "two", /MCP2_CPUS/],
    ["MCP2_PIDS_LIMIT", "-1", /MCP2_PIDS_LIMIT must be a whole number from 8 to 100000, got "-1"/],
    [
      "MCP2_NETWORK",
      "host",
      /MCP2_NETWORK must not share the host's or another container's network/,
    ],
    ["MCP2_NETWORK", "container:web", /MCP2_NETWORK must not share/],
    ["MCP2_NETWORK", "a b", /MCP2_NETWORK must be none or a network name/],
    ["MCP2_ALLOW_PUBLISH", "sometimes", /MCP2_ALLOW_PUBLISH must be true or false/],
    ["MCP2_TIMEOUT_SECONDS", "1.5", /MCP2_TIMEOUT_SECONDS must be a whole number from 1 to 3600/],
    ["MCP2_TIMEOUT_SECONDS", "0", /MCP2_TIMEOUT_SECONDS/],
    ["MCP2_DETACHED_TIMEOUT_SECONDS", "forever", /MCP2_DETACHED_TIMEOUT_SECONDS/],
    ["MCP2_MAX_CONTAINERS", "0", /MCP2_MAX_CONTAINERS/],
    ["MCP2_OUTPUT_LIMIT_BYTES", "10", /MCP2_OUTPUT_LIMIT_BYTES must be a whole number from 256/],
    ["MCP2_LOG_MAX_SIZE", "0", /MCP2_LOG_MAX_SIZE must be a size such as 1m, or none/],
    ["MCP2_DOCKER_CLI", "docker; rm -rf /", /MCP2_DOCKER_CLI must be a program name or path/],
  ])("refuses %s=%s with a message naming it", (name, value, message) => {
    const result = parseConfig({ [name]: value });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.join("\n")).toMatch(message);
  });

  it("reads a digest entry, exactly that digest", () => {
    const digest = `sha256:${"0f".repeat(32)}`;
    expect(parseConfig({ MCP2_ALLOWED_IMAGES: `mcpcp/busybox@${digest}` })).toMatchObject({
      ok: true,
      config: { allowedImages: [`mcpcp/busybox@${digest}`] },
    });
  });

  it("reports every bad variable at once", () => {
    const result = parseConfig({ MCP2_MEMORY: "x", MCP2_CPUS: "y", MCP2_NETWORK: "host" });
    expect(result.ok ? [] : result.errors.map((e) => e.split(" ")[0])).toEqual([
      "MCP2_MEMORY",
      "MCP2_CPUS",
      "MCP2_NETWORK",
    ]);
  });
});

describe("sizes and image references", () => {
  it("reads Docker's size units", () => {
    expect(sizeInBytes("256m")).toBe(256 * 1024 ** 2);
    expect(sizeInBytes("1G")).toBe(1024 ** 3);
    expect(sizeInBytes("512")).toBe(512);
    expect(sizeInBytes("1.5g")).toBeUndefined();
  });

  it("tells a registry port from a tag", () => {
    expect(splitImage("registry.local:5000/tools/jq")).toEqual({
      repo: "registry.local:5000/tools/jq",
      digest: undefined,
    });
    expect(splitImage("registry.local:5000/tools/jq:1.7")).toEqual({
      repo: "registry.local:5000/tools/jq",
      tag: "1.7",
      digest: undefined,
    });
    expect(splitImage("mcpcp/busybox@sha256:ab")).toEqual({
      repo: "mcpcp/busybox",
      digest: "sha256:ab",
    });
  });
});
