// Runs in Node before the workerd tests: makes a key pair, runs the proxy's own [build] (the admin
// page it imports as text), builds mcp1 the way `wrangler deploy` would, and starts a real Node MCP backend for mcp3 and the test backends of test/support. Values reach the pool through `provide`.
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import type { TestProject } from "vitest/node";
import { unstable_readConfig } from "wrangler";
import { ensureProxyKey } from "../../../keys/proxy-key.ts";
import { startBackend } from "../../../local-backends/common/backend.ts";
import { mcp3 as mcp3Definition } from "../../../local-backends/mcp3/backend.ts";
import { startReferenceServer } from "../../conformance/reference-server.ts";
import { startChangingBackend } from "../../support/changing-backend.ts";
import { startExchangesBackend } from "../../support/exchanges-backend.ts";
import { startMrtrBackend } from "../../support/mrtr-backend.ts";
import { OIDC_CLIENT, startOidcProvider } from "../../support/oidc-provider.ts";
import { startSlowBackend } from "../../support/slow-backend.ts";
import { startStreamsBackend } from "../../support/streams-backend.ts";
import { startThirdPartyBackend } from "../../support/third-party-backend.ts";
import { TEST_POLICY } from "./fixtures.ts";
import type {} from "./provided.ts";
import { startSpy } from "./spy.ts";

const BUILD_ROOT = join(process.cwd(), ".wrangler", "test-build");

/** A loopback port with nothing listening: the address of a dead backend. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export default async function setup(project: TestProject) {
  mkdirSync(BUILD_ROOT, { recursive: true });
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = "test-key";
  project.provide(
    "agentJwks",
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] }),
  );
  project.provide("agentPrivateJwk", JSON.stringify({ ...(await exportJWK(privateKey)), kid }));
  project.provide("policy", JSON.stringify(TEST_POLICY));
  const proxyKeys = await ensureProxyKey({ dir: mkdtempSync(join(BUILD_ROOT, "proxy-key-")) });
  project.provide("proxySigningKey", JSON.stringify(proxyKeys.signingKey));
  project.provide("proxyPublicJwks", JSON.stringify(proxyKeys.jwks));
  project.provide("deadUrl", `http://127.0.0.1:${await deadPort()}/mcp`);

  // Wrangler runs a config's [build] before `dev` and `deploy`; the Workers pool does not.
  const { build } = unstable_readConfig({ config: "wrangler.toml" });
  if (build.command) execSync(build.command, { cwd: build.cwd ?? process.cwd(), stdio: "pipe" });

  // Inside the repo: workerd will not load modules from above its starting directory.
  mkdirSync(BUILD_ROOT, { recursive: true });
  const outdir = mkdtempSync(join(BUILD_ROOT, "mcp1-"));
  execFileSync(
    "wrangler",
    ["deploy", "--dry-run", "--outdir", outdir, "-c", "workers/mcp1/wrangler.toml"],
    { stdio: "pipe", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  project.provide("mcp1Script", join(outdir, "index.js"));

  // mcp3 as deployed: it believes only the proxy's signed assertion.
  const mcp3 = await startBackend({
    ...mcp3Definition,
    port: 0,
    proxyKeys: { jwks: proxyKeys.jwks },
  });
  // mcp3 is reached through a counting relay: hostile-input tests prove nothing got through.
  const spy = await startSpy(mcp3.url);
  project.provide("mcp3Url", `${spy.url}/mcp`);
  project.provide("mcp3Spy", spy.url);

  const thirdParty = await startThirdPartyBackend();
  project.provide("thirdPartyUrl", thirdParty.url);
  const changing = await startChangingBackend();
  project.provide("changingUrl", changing.url);
  const slow = await startSlowBackend();
  project.provide("slowUrl", slow.url);
  // Two backends on one server that counts the streams open on each (streams.test.ts).
  const streams = await startStreamsBackend();
  project.provide("streamsUrl", streams.url);

  // For the doors' server→client exchanges: the conformance reference server (2025, sessions),
  // a 2025 server with roots and URL elicitation, and a 2026-07-28 multi-round-trip server.
  const reference = await startReferenceServer();
  project.provide("referenceUrl", reference.url);
  const exchanges = await startExchangesBackend();
  project.provide("exchangesUrl", exchanges.url);
  const mrtr = await startMrtrBackend();
  project.provide("mrtrUrl", mrtr.url);

  // oauth.test.ts: the OpenID Connect provider people sign in with.
  const oidc = await startOidcProvider(["https://proxy.test/oauth/callback"]);
  project.provide("oidcIssuer", oidc.issuer);
  project.provide("oidcClientId", OIDC_CLIENT.id);
  project.provide("oidcClientSecret", OIDC_CLIENT.secret);

  return async () => {
    await oidc.close();
    await mrtr.close();
    await exchanges.close();
    await reference.close();
    await streams.close();
    await slow.close();
    await changing.close();
    await thirdParty.close();
    await spy.close();
    await mcp3.close();
    rmSync(outdir, { recursive: true, force: true });
  };
}
