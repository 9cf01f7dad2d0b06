// Runs in Node before the mcp1 workerd tests: a key pair for inspection tokens, and a proxy key
// for the assertions /mcp requires. The public JWKSs become mcp1's AGENT_JWKS and PROXY_JWKS; the
// private JWKs let tests sign tokens and assertions inside workerd.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import type { TestProject } from "vitest/node";
import { ensureProxyKey } from "../../../keys/proxy-key.ts";
import type {} from "./provided.ts";

export default async function setup(project: TestProject) {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = "mcp1-test-key";
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] };
  project.provide("inspectJwks", JSON.stringify(jwks));
  project.provide("inspectPrivateJwk", JSON.stringify({ ...(await exportJWK(privateKey)), kid }));

  // The proxy's key as `npm run keys` makes it, in a folder of its own for this run.
  const root = join(process.cwd(), ".wrangler", "test-build");
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(join(root, "mcp1-proxy-key-"));
  const proxyKeys = await ensureProxyKey({ dir });
  project.provide("proxySigningKey", JSON.stringify(proxyKeys.signingKey));
  project.provide("proxyJwks", JSON.stringify(proxyKeys.jwks));
  return () => rmSync(dir, { recursive: true, force: true });
}
