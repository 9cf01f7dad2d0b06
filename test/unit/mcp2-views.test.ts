/**
 * `docker info` and `docker version` as mcp2 answers them, without Docker: the views hold only
 * what concerns the caller, and `--format` reads those views and nothing more.
 */
import { describe, expect, it } from "vitest";
import type { OwnedContainer } from "../../local-backends/mcp2/ownership.ts";
import {
  parseTemplate,
  renderTemplate,
  type Template,
} from "../../local-backends/mcp2/template.ts";
import {
  infoText,
  infoView,
  parseVersionFacts,
  VIEW_SHAPES,
  versionText,
} from "../../local-backends/mcp2/views.ts";

const VERSION = parseVersionFacts(
  JSON.stringify({
    Client: { Version: "28.2.2", APIVersion: "1.41" },
    Server: {
      Version: "20.10.24",
      APIVersion: "1.41",
      MinAPIVersion: "1.12",
      Os: "linux",
      Arch: "amd64",
    },
  }),
);

function owned(...states: string[]): OwnedContainer[] {
  return states.map((state, i) => ({
    id: String(i).repeat(64),
    names: [`c${i}`],
    agent: "agent_a",
    state,
  }));
}

function template(source: string, view: "info" | "version"): Template {
  const parsed = parseTemplate(source, VIEW_SHAPES[view], `docker ${view}`);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.template;
}

describe("views", () => {
  it("reads only the version facts mcp2 asks for, and nothing malformed", () => {
    expect(VERSION?.Server.Version).toBe("20.10.24");
    expect(parseVersionFacts("not json")).toBeUndefined();
    expect(parseVersionFacts('{"Client":{}}')).toBeUndefined();
  });

  it("counts the caller's containers as the engine does: paused, running, the rest stopped", () => {
    if (!VERSION) throw new Error("no version");
    const info = infoView(
      owned("running", "restarting", "paused", "exited", "created", "dead"),
      ["sha256:a", "sha256:a", "sha256:b"],
      VERSION,
    );
    expect(info).toEqual({
      Containers: 6,
      ContainersRunning: 2,
      ContainersPaused: 1,
      ContainersStopped: 3,
      Images: 2,
      ServerVersion: "20.10.24",
    });
    expect(infoText(info)).toMatch(
      /^Server:\n Containers: 6\n {2}Running: 2\n {2}Paused: 1\n {2}Stopped: 3\n Images: 2\n Server Version: 20\.10\.24\n/,
    );
  });

  it("lays docker version out as Docker does, with the view's fields only", () => {
    if (!VERSION) throw new Error("no version");
    expect(versionText(VERSION)).toMatch(
      /^Client:\n Version: {11}28\.2\.2\n API version: {7}1\.41\n\nServer:\n Engine:\n {2}Version: {10}20\.10\.24\n {2}API version: {6}1\.41 \(minimum version 1\.12\)\n {2}OS\/Arch: {10}linux\/amd64\n/,
    );
  });
});

describe("--format over a view", () => {
  it("renders fields, json and Go's %v as the CLI would, ending in a newline", () => {
    if (!VERSION) throw new Error("no version");
    expect(renderTemplate(template("{{.Server.Version}}", "version"), VERSION)).toBe("20.10.24\n");
    expect(renderTemplate(template("v={{ .Client.APIVersion }}!", "version"), VERSION)).toBe(
      "v=1.41!\n",
    );
    expect(renderTemplate(template("{{json .Client}}", "version"), VERSION)).toBe(
      '{"Version":"28.2.2","ApiVersion":"1.41"}\n',
    );
    expect(renderTemplate(template("json", "version"), VERSION)).toBe(
      renderTemplate(template("{{json .}}", "version"), VERSION),
    );
    expect(renderTemplate(template("{{.Server}}", "version"), VERSION)).toBe(
      "{20.10.24 1.41 1.12 linux amd64}\n",
    );
    expect(renderTemplate(template("plain text", "version"), VERSION)).toBe("plain text\n");
  });

  it("refuses whatever is not a field of the view or one of the accepted actions", () => {
    const reason = (source: string) => {
      const parsed = parseTemplate(source, VIEW_SHAPES.info, "docker info");
      return parsed.ok ? "accepted" : parsed.reason;
    };
    expect(reason("{{.Name}}")).toMatch(/^--format: docker info here has no field \.Name /);
    expect(reason("{{json .Swarm.NodeID}}")).toMatch(/no field \.Swarm /);
    expect(reason("{{.Containers.X}}")).toMatch(/no field \.Containers\.X/);
    expect(reason('{{template "x"}}')).toMatch(/is not understood here/);
    expect(reason("{{$x := .Name}}")).toMatch(/is not understood here/);
    expect(reason("{{.Containers}} {{")).toMatch(/is never closed/);
    expect(reason("{{.Containers}}}}")).toBe("accepted");
  });
});
