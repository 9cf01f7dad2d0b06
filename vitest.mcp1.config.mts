/**
 * mcp1 and its Durable Objects (BattleSession, BattleIndex), tested inside workerd with the Workers
 * Vitest integration, against the Worker and bindings that workers/mcp1/wrangler.toml declares.
 * AGENT_JWKS and PROXY_JWKS are keys made for the run (test/workers/mcp1/global-setup.ts).
 */
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./workers/mcp1/wrangler.toml" },
      // workerd's own diagnostics (uncaught exceptions, dropped connections) belong to no test, so
      // they would print even when every test passes; MCPCP_WORKERD_VERBOSE=1 brings them back.
      verbose: process.env.MCPCP_WORKERD_VERBOSE === "1",
      miniflare: {
        bindings: {
          AGENT_JWKS: inject<string>("inspectJwks"),
          PROXY_JWKS: inject<string>("proxyJwks"),
        },
      },
    })),
  ],
  test: {
    name: "mcp1-workers",
    // A file's first request starts its isolate (seconds when many files start at once on two
    // cores): 5 s is too close for the first test of a file.
    testTimeout: 15_000,
    include: ["test/workers/mcp1/**/*.test.ts"],
    globalSetup: ["test/workers/mcp1/global-setup.ts"],
  },
});
