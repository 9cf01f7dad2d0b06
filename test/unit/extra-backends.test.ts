// EXTRA_BACKENDS by the proxy's rules (workers/proxy/src/core/config.ts), the launcher's check
// before it starts anything (scripts/launch-config.ts), and its banner line (scripts/backend-probe.ts).
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { probeBackend, probeLine, reasonOf } from "../../scripts/backend-probe.ts";
import { checkLaunchConfig } from "../../scripts/launch-config.ts";
import { parseExtraBackends } from "../../workers/proxy/src/core/config.ts";
import { startThirdPartyBackend } from "../support/third-party-backend.ts";

const BUILT_IN = ["mcp1", "mcp2", "mcp3"];
const JWKS = JSON.stringify({
  keys: [{ kty: "RSA", kid: "k1", alg: "RS256", use: "sig", n: "sYz", e: "AQAB" }],
});

describe("parseExtraBackends", () => {
  it("takes nothing from an unset or blank variable", () => {
    expect(parseExtraBackends(undefined, BUILT_IN)).toEqual({ ok: true, value: [] });
    expect(parseExtraBackends("  ", BUILT_IN)).toEqual({ ok: true, value: [] });
  });

  it("reads each entry's id, URL and identity, which defaults to none", () => {
    const parsed = parseExtraBackends(
      JSON.stringify([
        { id: "ext", url: "http://127.0.0.1:8000/mcp" },
        { id: "files", url: "https://files.example/mcp", identity: "assertion" },
      ]),
      BUILT_IN,
    );
    expect(parsed).toEqual({
      ok: true,
      value: [
        { id: "ext", url: new URL("http://127.0.0.1:8000/mcp"), identity: "none" },
        { id: "files", url: new URL("https://files.example/mcp"), identity: "assertion" },
      ],
    });
  });

  it.each([
    ["not JSON", "[{", /^EXTRA_BACKENDS is not valid JSON/],
    ["an object, not a list", '{"id":"ext"}', /^EXTRA_BACKENDS is invalid at \(root\)/],
    ["an entry without a url", '[{"id":"ext"}]', /^EXTRA_BACKENDS is invalid at 0\.url/],
    [
      "an unknown identity",
      '[{"id":"ext","url":"http://h/mcp","identity":"binding"}]',
      /^EXTRA_BACKENDS is invalid at 0\.identity/,
    ],
    [
      "an id with an underscore",
      '[{"id":"my_ext","url":"http://h/mcp"}]',
      /^EXTRA_BACKENDS id "my_ext" must match/,
    ],
    [
      "a built-in server's id",
      '[{"id":"mcp2","url":"http://h/mcp"}]',
      /^EXTRA_BACKENDS id "mcp2" is already taken/,
    ],
    [
      "the same id twice",
      '[{"id":"ext","url":"http://a/mcp"},{"id":"ext","url":"http://b/mcp"}]',
      /^EXTRA_BACKENDS id "ext" is already taken/,
    ],
    [
      "a URL that is not http(s)",
      '[{"id":"ext","url":"ftp://h/mcp"}]',
      /^EXTRA_BACKENDS\[ext\]\.url is not an http\(s\) URL/,
    ],
  ])("refuses %s, naming the variable", (_name, json, message) => {
    const parsed = parseExtraBackends(json, BUILT_IN);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(message);
  });
});

describe("checkLaunchConfig", () => {
  const extra = JSON.stringify([{ id: "ext", url: "http://127.0.0.1:8000/mcp" }]);
  const check = (policy: object, extraBackends?: string) =>
    checkLaunchConfig({
      jwks: JWKS,
      policy: JSON.stringify(policy),
      policyFile: "policy.json",
      extraBackends,
      builtIn: BUILT_IN,
    });

  it("accepts a policy that grants an extra backend, and returns the backends", () => {
    const checked = check({ a: { mcp1: "*", ext: ["echo"] } }, extra);
    expect(checked.ok && checked.value.extraBackends.map((b) => b.id)).toEqual(["ext"]);
  });

  it("refuses a policy naming a server that is not configured, naming it, the known ones and how to add one", () => {
    const checked = check({ a: { ext: "*" } });
    expect(checked.ok).toBe(false);
    const error = checked.ok ? "" : checked.error;
    expect(error).toContain(
      'policy.json: POLICY grants agent "a" server "ext", which is not configured (known: mcp1, mcp2, mcp3)',
    );
    expect(error).toContain("EXTRA_BACKENDS in the environment of npm start");
  });

  it("counts the extra backends among the known servers", () => {
    const checked = check({ a: { nope: "*" } }, extra);
    expect(!checked.ok && checked.error).toContain("(known: mcp1, mcp2, mcp3, ext)");
  });

  it("refuses a bad EXTRA_BACKENDS before it reads the policy", () => {
    const checked = check({ a: { ext: "*" } }, '[{"id":"mcp1","url":"http://h/mcp"}]');
    expect(!checked.ok && checked.error).toBe('EXTRA_BACKENDS id "mcp1" is already taken');
  });

  it("refuses a JWKS the proxy would refuse", () => {
    const checked = checkLaunchConfig({
      jwks: '{"keys":[]}',
      policy: "{}",
      policyFile: "policy.json",
      extraBackends: undefined,
      builtIn: BUILT_IN,
    });
    expect(checked.ok).toBe(false);
  });
});

describe("the banner's line for an extra backend", () => {
  const backend = {
    id: "ext",
    url: new URL("http://127.0.0.1:8000/mcp"),
    identity: "none" as const,
  };

  it("says it is reachable, with the server's name, version and protocol", () => {
    expect(
      probeLine(backend, {
        ok: true,
        name: "third-party",
        version: "1.0.0",
        protocolVersion: "2025-11-25",
      }),
    ).toBe(
      "  ext    http://127.0.0.1:8000/mcp  (EXTRA_BACKENDS)  reachable: third-party 1.0.0, protocol 2025-11-25",
    );
  });

  it("says plainly that it is unreachable, and why", () => {
    expect(
      probeLine(backend, { ok: false, reason: "connect ECONNREFUSED 127.0.0.1:8000" }),
    ).toMatch(
      /^ {2}ext {4}http:\/\/127\.0\.0\.1:8000\/mcp {2}\(EXTRA_BACKENDS\) {2}UNREACHABLE: connect ECONNREFUSED 127\.0\.0\.1:8000 \(/,
    );
  });

  it("gives the innermost cause of a failed fetch, and an HTTP status when there is one", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8000"), {
      code: "ECONNREFUSED",
    });
    const fetchFailed = new TypeError("fetch failed", { cause: refused });
    expect(reasonOf(new Error("Version negotiation probe failed", { cause: fetchFailed }))).toBe(
      "connect ECONNREFUSED 127.0.0.1:8000",
    );
    expect(reasonOf(Object.assign(new Error("Error POSTing to endpoint"), { status: 404 }))).toBe(
      "HTTP 404: Error POSTing to endpoint",
    );
    expect(reasonOf("plain")).toBe("plain");
  });
});

describe("probeBackend", () => {
  /** A server that answers every request with `status` and remembers the headers it got. */
  async function answering(status: number, seen: IncomingHttpHeaders[]) {
    const server = createServer((req, res) => {
      seen.push(req.headers);
      if (status) res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: new URL(`http://127.0.0.1:${port}/mcp`),
      close: () => {
        server.closeAllConnections();
        return new Promise((resolve) => server.close(resolve));
      },
    };
  }

  it("finds a backend's server name, version and protocol with the SDK client", async () => {
    const backend = await startThirdPartyBackend();
    try {
      const url = new URL(`${backend.url}/mcp`);
      expect(await probeBackend({ id: "ext", url, identity: "none" }, { timeoutMs: 3000 })).toEqual(
        {
          ok: true,
          name: "third-party",
          version: "1.0.0",
          protocolVersion: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
        },
      );
    } finally {
      await backend.close();
    }
  });

  it("sends the proxy's assertion to a backend that asks for one, and says what it answered", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = await answering(401, seen);
    try {
      const probe = await probeBackend(
        { id: "files", url: server.url, identity: "assertion" },
        { timeoutMs: 3000, assertion: async (id) => `assertion-for-${id}` },
      );
      expect(probe).toEqual({ ok: false, reason: expect.stringContaining("HTTP 401") });
      expect(seen[0]?.authorization).toBe("Bearer assertion-for-files");
    } finally {
      await server.close();
    }
  });

  it("sends no credentials to a backend with identity none", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = await answering(404, seen);
    try {
      await probeBackend(
        { id: "ext", url: server.url, identity: "none" },
        { timeoutMs: 3000, assertion: async () => "never" },
      );
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((headers) => headers.authorization === undefined)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("gives up on a backend that never answers after the timeout, saying so", async () => {
    const server = await answering(0, []);
    try {
      expect(
        await probeBackend({ id: "slow", url: server.url, identity: "none" }, { timeoutMs: 200 }),
      ).toEqual({ ok: false, reason: "no answer within 200 ms" });
    } finally {
      await server.close();
    }
  });
});
