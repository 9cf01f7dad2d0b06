/**
 * OAuth sign-in end to end: the system `npm start` runs, told of a real OpenID Connect provider
 * (oidc-provider with a test person) through the launcher's environment, as an operator would.
 * The MCP SDK client's own OAuth support finds the gateway's authorization server from a 401,
 * registers itself, and runs the authorization code flow with PKCE; its `redirectToAuthorization`
 * is a person at a browser, by script, who signs in upstream and allows the gateway's consent
 * page. The client then lists its agent's tools and calls one. The consent page is also shown to
 * real Chromium.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import {
  type OAuthClientProvider,
  UnauthorizedError,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { pkce, ScriptedBrowser, signInUpstream } from "../support/oauth-browser.ts";
import { OIDC_CLIENT, type RunningProvider, startOidcProvider } from "../support/oidc-provider.ts";
import { type Chromium, launchChromium, saveScreenshot } from "./browser.ts";
import { DEFAULT_PORT_BASE, type Launched, launch, resultText } from "./launcher.ts";

const run = promisify(execFile);
const CALLBACK = "http://127.0.0.1:33419/callback";

let oidc: RunningProvider;
let system: Launched;

/** The client's side of OAuth, in memory; the "browser" signs in as `account` and allows. */
class ScriptedProvider implements OAuthClientProvider {
  private info: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = "";
  /** The authorization code the redirect brought back, and the rest of its query. */
  returned: URLSearchParams | undefined;
  consentPage = "";

  private readonly account: string;
  constructor(account: string) {
    this.account = account;
  }

  get redirectUrl() {
    return CALLBACK;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "MCPCP e2e client",
      redirect_uris: [CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url: URL) {
    const browser = new ScriptedBrowser();
    const atClient = (to: string) => to.startsWith(CALLBACK);
    const login = await browser.go(url.href, {}, atClient);
    const consent = await signInUpstream(browser, login, this.account, atClient);
    this.consentPage = consent.body;
    if (consent.response.status !== 200) throw new Error(`no consent page: ${consent.body}`);
    const back = await browser.submit(consent, { decision: "approve" }, atClient);
    this.returned = new URL(back.url).searchParams;
  }
}

/** `npm run admin -- ...args`, as the operator maps people. */
async function admin(...args: string[]) {
  const { stdout } = await run(
    process.execPath,
    ["scripts/admin.ts", "--url", system.proxyUrl.origin, ...args],
    { cwd: join(import.meta.dirname, "..", "..") },
  );
  return JSON.parse(stdout);
}

beforeAll(async () => {
  oidc = await startOidcProvider([`http://127.0.0.1:${DEFAULT_PORT_BASE}/oauth/callback`]);
  system = await launch({
    env: {
      OIDC_ISSUER: oidc.issuer,
      OIDC_CLIENT_ID: OIDC_CLIENT.id,
      OIDC_CLIENT_SECRET: OIDC_CLIENT.secret,
    },
  });
  await admin("people", "map", "email", "alice@example.test", "agent_name1");
}, 150_000);

afterAll(async () => {
  if (system?.child.exitCode === null) await system.stop();
  await oidc?.close();
});

describe("OAuth sign-in with the MCP SDK client", () => {
  it("discovers, registers, signs a person in through the upstream provider, lists and calls", async () => {
    const provider = new ScriptedProvider("alice");
    const transport = new StreamableHTTPClientTransport(system.proxyUrl, {
      authProvider: provider,
    });
    const client = new Client({ name: "e2e-oauth", version: "1.0.0" });
    await expect(client.connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    // The consent page named the person, the client and the agent's tools.
    expect(provider.consentPage).toContain("alice@example.test");
    expect(provider.consentPage).toContain("MCPCP e2e client");
    expect(provider.consentPage).toContain("<code>mcp1_echo</code>");
    expect(provider.returned?.get("iss")).toBe(system.proxyUrl.origin);
    await transport.finishAuth(provider.returned?.get("code") ?? "");
    expect(provider.tokens()?.refresh_token).toBeTruthy();

    const signedIn = new Client({ name: "e2e-oauth", version: "1.0.0" });
    await signedIn.connect(
      new StreamableHTTPClientTransport(system.proxyUrl, { authProvider: provider }),
    );
    try {
      const names = (await signedIn.listTools()).tools.map((t) => t.name);
      expect(names).toContain("mcp1_echo");
      expect(names.some((n) => n.startsWith("mcp2_"))).toBe(false);
      const result = await signedIn.callTool({
        name: "mcp1_echo",
        arguments: { message: "signed in" },
      });
      expect(resultText(result)).toBe("Echo: signed in");
    } finally {
      await signedIn.close();
    }
  });

  it("tells a person nobody mapped that they may not sign in", async () => {
    const provider = new ScriptedProvider("mallory");
    const transport = new StreamableHTTPClientTransport(system.proxyUrl, {
      authProvider: provider,
    });
    const client = new Client({ name: "e2e-oauth", version: "1.0.0" });
    await expect(client.connect(transport)).rejects.toThrow(/no consent page/);
    expect(provider.returned).toBeUndefined();
  });
});

describe("the consent page in Chromium", () => {
  let chromium: Chromium;
  beforeAll(async () => {
    chromium = await launchChromium();
  });
  afterAll(async () => {
    await chromium?.close();
  });

  it("shows who signs in, which client, and the tools; Allow returns a code with iss", async () => {
    const registered = await fetch(new URL("/oauth/register", system.proxyUrl), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "Chromium <b>Client</b>",
        redirect_uris: [CALLBACK],
        token_endpoint_auth_method: "none",
      }),
    });
    expect(registered.status).toBe(201);
    const { client_id } = (await registered.json()) as { client_id: string };
    const { challenge } = await pkce();
    const url = new URL("/authorize", system.proxyUrl);
    for (const [k, v] of Object.entries({
      response_type: "code",
      client_id,
      redirect_uri: CALLBACK,
      state: "chromium-state",
      code_challenge: challenge,
      code_challenge_method: "S256",
      resource: system.proxyUrl.href,
    })) {
      url.searchParams.set(k, v);
    }
    const page = await chromium.newPage();
    // The client's redirect URI: a listener, as a desktop client runs one (a route would not see
    // a redirect's target).
    let landed: URL | undefined;
    const listener = createServer((request, response) => {
      // Only the redirect itself: the browser asks for /favicon.ico too.
      const url = new URL(request.url ?? "/", CALLBACK);
      if (url.pathname === "/callback") landed = url;
      response.end("back at the client");
    });
    await new Promise<void>((resolve) =>
      listener.listen(Number(new URL(CALLBACK).port), "127.0.0.1", resolve),
    );
    onTestFinished(() => new Promise<void>((resolve) => listener.close(() => resolve())));
    await page.goto(url.href);
    // The provider's sign-in form, its own consent to the OpenID scopes, then the gateway's page.
    for (let step = 0; step < 4 && (await page.locator("#approve").count()) === 0; step++) {
      if ((await page.locator('input[name="login"]').count()) > 0) {
        await page.fill('input[name="login"]', "alice");
        await page.fill('input[name="password"]', "any");
      }
      const before = page.url();
      await Promise.all([
        page.waitForURL((to) => to.href !== before, { timeout: 10_000 }),
        page.click('button[type="submit"]'),
      ]);
      await page.waitForLoadState();
    }
    expect(
      await page.locator("#approve").count(),
      `${page.url()}: ${await page.textContent("body")}`,
    ).toBe(1);
    expect(await page.textContent("#email")).toBe("alice@example.test");
    expect(await page.textContent("#agent")).toBe("agent_name1");
    // The client's self-chosen name is shown as text, never as markup.
    expect(await page.textContent("#client")).toBe("Chromium <b>Client</b>");
    expect(await page.locator("#client b").count()).toBe(0);
    expect(await page.textContent("#redirect-host")).toBe("127.0.0.1");
    // It asked for no scope: it gets both, and the page says so.
    expect(await page.textContent("#scopes")).toBe("list_tools, call_tools");
    const tools = await page.locator("#tools li").allTextContents();
    expect(tools).toContain("mcp1_echo");
    await saveScreenshot(page, "oauth-consent");
    await page.click("#approve");
    await page.waitForURL(`${CALLBACK}**`);
    expect(landed?.searchParams.get("state")).toBe("chromium-state");
    expect(landed?.searchParams.get("iss")).toBe(system.proxyUrl.origin);
    expect(landed?.searchParams.get("code")).toBeTruthy();
  });
});

describe("mcp-remote 0.15.1, as a desktop client runs it", () => {
  it("signs in with OAuth by itself, then relays tools/list and tools/call over stdio", async () => {
    const home = mkdtempSync(join(tmpdir(), "mcpcp-mcp-remote-"));
    onTestFinished(() => rmSync(home, { recursive: true, force: true }));
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        join(import.meta.dirname, "..", "..", "node_modules", "mcp-remote", "dist", "proxy.js"),
        system.proxyUrl.href,
        "33420",
        "--transport",
        "http-only",
        "--allow-http",
      ],
      // Only node on PATH: mcp-remote finds no browser to open and prints the URL, which the
      // scripted person follows (its token store in a folder of this test's own).
      env: {
        PATH: dirname(process.execPath),
        HOME: home,
        MCP_REMOTE_CONFIG_DIR: join(home, "auth"),
      },
      stderr: "pipe",
    });
    let printed = "";
    let signedIn: Promise<unknown> | undefined;
    transport.stderr?.on("data", (chunk: Buffer) => {
      printed += chunk.toString();
      const url = /Please authorize this client by visiting:\s+(\S+)/.exec(printed)?.[1];
      if (url && !signedIn) {
        signedIn = (async () => {
          const browser = new ScriptedBrowser();
          const login = await browser.go(url);
          const consent = await signInUpstream(browser, login, "alice", () => false);
          expect(consent.body).toContain("alice@example.test");
          // Allow, and follow the redirect to mcp-remote's own callback listener.
          const back = await browser.submit(consent, { decision: "approve" });
          expect(back.url).toContain("localhost:33420");
        })();
      }
    });
    const client = new Client({ name: "e2e-mcp-remote", version: "1.0.0" });
    try {
      await client.connect(transport);
      await signedIn;
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("mcp1_echo");
      const result = await client.callTool({ name: "mcp1_echo", arguments: { message: "remote" } });
      expect(resultText(result)).toBe("Echo: remote");
    } catch (e) {
      throw new Error(`${String(e)}\nmcp-remote printed:\n${printed}`);
    } finally {
      await client.close();
    }
  }, 60_000);
});

describe("client credentials, as an operator sets a program up", () => {
  it("registers an agent with npm run admin, and its token lists and calls that agent's tools", async () => {
    const made = (await admin("clients", "add", "agent_name1")) as {
      client_id: string;
      client_secret: string;
    };
    const issued = await fetch(new URL("/oauth/token", system.proxyUrl), {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${btoa(`${made.client_id}:${made.client_secret}`)}`,
      },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        resource: system.proxyUrl.href,
      }),
    });
    expect(issued.status).toBe(200);
    const { access_token } = (await issued.json()) as { access_token: string };
    const client = new Client({ name: "e2e-client-credentials", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(system.proxyUrl, {
        requestInit: { headers: { authorization: `Bearer ${access_token}` } },
      }),
    );
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("mcp3_echo");
      const result = await client.callTool({
        name: "mcp1_echo",
        arguments: { message: "program" },
      });
      expect(resultText(result)).toBe("Echo: program");
    } finally {
      await client.close();
    }
    await admin("clients", "remove", made.client_id);
  });
});
