// Runs in Node before the mcp1 workerd tests: a key pair for inspection tokens. The public JWKS
// becomes mcp1's AGENT_JWKS; the private JWK lets tests sign tokens inside workerd.
import { exportJWK, generateKeyPair } from "jose";
import type { TestProject } from "vitest/node";
import type {} from "./provided.ts";

export default async function setup(project: TestProject) {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = "mcp1-test-key";
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] };
  project.provide("inspectJwks", JSON.stringify(jwks));
  project.provide("inspectPrivateJwk", JSON.stringify({ ...(await exportJWK(privateKey)), kid }));
}
