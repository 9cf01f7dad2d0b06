/**
 * `docker info` and `docker version` as mcp2 answers them. The engine's own answers describe the
 * host (its name, kernel, operating system, CPUs, memory, the engine's paths, registries, proxies)
 * and count every agent's containers, so they never reach an agent. mcp2 answers from what
 * concerns the caller: its own containers, the images it may run, the versions that decide which
 * commands and API features work, and the platform its containers run on. Pure: the facts come in
 * from the engine (`engine.ts`), the views go out through `template.ts`.
 */
import { z } from "zod";
import type { OwnedContainer } from "./ownership.ts";
import type { Shape } from "./template.ts";

export type ViewName = "info" | "version";

/** The fields of each view, as `--format` names them (Docker's Go field names, in its order). */
export const VIEW_SHAPES: Record<ViewName, Shape> = {
  info: {
    Containers: true,
    ContainersRunning: true,
    ContainersPaused: true,
    ContainersStopped: true,
    Images: true,
    ServerVersion: true,
  },
  version: {
    Client: { Version: true, APIVersion: true },
    Server: { Version: true, APIVersion: true, MinAPIVersion: true, Os: true, Arch: true },
  },
};

/**
 * `docker version --format` mcp2 runs for itself: exactly the fields of the version view, so not
 * even mcp2's own copy of the answer holds the kernel, build or component versions.
 */
export const VERSION_FACTS_FORMAT =
  '{"Client":{"Version":{{json .Client.Version}},"APIVersion":{{json .Client.APIVersion}}},' +
  '"Server":{"Version":{{json .Server.Version}},"APIVersion":{{json .Server.APIVersion}},' +
  '"MinAPIVersion":{{json .Server.MinAPIVersion}},"Os":{{json .Server.Os}},"Arch":{{json .Server.Arch}}}}';

const VERSION_FACTS = z.object({
  Client: z.object({ Version: z.string(), APIVersion: z.string() }),
  Server: z.object({
    Version: z.string(),
    APIVersion: z.string(),
    MinAPIVersion: z.string(),
    Os: z.string(),
    Arch: z.string(),
  }),
});

export type VersionView = z.infer<typeof VERSION_FACTS>;

export type InfoView = {
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  /** Distinct images the caller may run that the engine has. */
  Images: number;
  ServerVersion: string;
};

/** Reads the output of `VERSION_FACTS_FORMAT`, or undefined when it is not that. */
export function parseVersionFacts(stdout: string): VersionView | undefined {
  try {
    const parsed = VERSION_FACTS.safeParse(JSON.parse(stdout));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The caller's `docker info`: its containers counted as the engine counts them (paused first,
 * then running, restarting included, then everything else as stopped), the distinct images it may
 * run, and the server version.
 */
export function infoView(
  owned: OwnedContainer[],
  imageIds: string[],
  version: VersionView,
): InfoView {
  const paused = owned.filter((c) => c.state === "paused").length;
  const running = owned.filter((c) => c.state === "running" || c.state === "restarting").length;
  return {
    Containers: owned.length,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: owned.length - running - paused,
    Images: new Set(imageIds).size,
    ServerVersion: version.Server.Version,
  };
}

/** `docker info` without `--format`: Docker's layout, with the caller's fields only. */
export function infoText(view: InfoView): string {
  return [
    "Server:",
    ` Containers: ${view.Containers}`,
    `  Running: ${view.ContainersRunning}`,
    `  Paused: ${view.ContainersPaused}`,
    `  Stopped: ${view.ContainersStopped}`,
    ` Images: ${view.Images}`,
    ` Server Version: ${view.ServerVersion}`,
    "",
    "mcp2 answers docker info itself: your own containers, the images you may run (docker images)",
    "and the server version; nothing about the host or other agents.",
    "",
  ].join("\n");
}

/** `docker version` without `--format`: Docker's layout, with the view's fields only. */
export function versionText(view: VersionView): string {
  const line = (label: string, value: string) => `${label.padEnd(20)}${value}`;
  return [
    "Client:",
    line(" Version:", view.Client.Version),
    line(" API version:", view.Client.APIVersion),
    "",
    "Server:",
    " Engine:",
    line("  Version:", view.Server.Version),
    line(
      "  API version:",
      `${view.Server.APIVersion} (minimum version ${view.Server.MinAPIVersion})`,
    ),
    line("  OS/Arch:", `${view.Server.Os}/${view.Server.Arch}`),
    "",
    "mcp2 answers docker version itself: the versions and the platform, not how the host's",
    "engine was built or its kernel.",
    "",
  ].join("\n");
}
