// The proxy Worker inside workerd (Workers Vitest integration), with the real mcp1 Worker and its
// Durable Object bound as MCP1, a real Node backend as mcp3, and a dead address as mcp2.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    {
      // The v1 SDK ships sourcemaps that name sources its package leaves out; Vite warns once per
      // file (19 lines) whenever it transforms them afresh, as on every fresh clone.
      name: "mcpcp:quiet-missing-sources",
      configResolved(config) {
        const warnOnce = config.logger.warnOnce;
        config.logger.warnOnce = (message, options) => {
          if (!message.includes("points to missing source files")) warnOnce(message, options);
        };
      },
    },
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      // workerd's own diagnostics (uncaught exceptions, dropped connections) belong to no test, so
      // they would print even when every test passes; MCPCP_WORKERD_VERBOSE=1 brings them back.
      verbose: process.env.MCPCP_WORKERD_VERBOSE === "1",
      miniflare: {
        bindings: {
          AGENT_JWKS: inject<string>("agentJwks"),
          POLICY: inject<string>("policy"),
          PROXY_SIGNING_KEY: inject<string>("proxySigningKey"),
          PROXY_PUBLIC_JWKS: inject<string>("proxyPublicJwks"),
          MCP2_URL: inject<string>("deadUrl"),
          MCP3_URL: inject<string>("mcp3Url"),
          BACKEND_TIMEOUT_MS: "3000",
          // Longer than the backends' deadline, so the tests tell the two waits apart.
          AGENT_ANSWER_TIMEOUT_MS: "4500",
          // The tests' requests go to http://proxy.test (test/workers/proxy/client.ts).
          ALLOWED_HOSTS: "proxy.test",
          // mcp3_echo stands in for the expensive tools so the per-tool limit can be exercised.
          EXTRA_BACKENDS: JSON.stringify([
            { id: "ext", url: `${inject<string>("thirdPartyUrl")}/mcp` },
            { id: "dyn", url: `${inject<string>("changingUrl")}/mcp` },
            { id: "slow", url: `${inject<string>("slowUrl")}/mcp` },
            { id: "ref", url: inject<string>("referenceUrl") },
            { id: "exch", url: `${inject<string>("exchangesUrl")}/mcp` },
            { id: "mrtr", url: `${inject<string>("mrtrUrl")}/mcp` },
            { id: "lsa", url: `${inject<string>("streamsUrl")}/a/mcp` },
            { id: "lsb", url: `${inject<string>("streamsUrl")}/b/mcp` },
          ]),
          RATE_LIMITED_TOOLS: "mcp3_echo,mcp2_run_docker,mcp3_run_python_code",
        },
        workers: [
          {
            name: "mcpcp-mcp1",
            modules: true,
            scriptPath: inject<string>("mcp1Script"),
            compatibilityDate: "2026-11-01",
            bindings: {
              AGENT_JWKS: inject<string>("agentJwks"),
              // mcp1 believes only the proxy's assertions, as mcp3 here does.
              PROXY_JWKS: inject<string>("proxyPublicJwks"),
              JWT_ISSUER: "https://mcpcp",
              JWT_AUDIENCE: "mcpcp-server",
            },
            durableObjects: {
              BATTLE: { className: "BattleSession", useSQLite: true },
              BATTLE_INDEX: { className: "BattleIndex", useSQLite: true },
            },
          },
        ],
      },
    })),
  ],
  test: {
    name: "proxy-workers",
    include: ["test/workers/proxy/**/*.test.ts"],
    globalSetup: ["test/workers/proxy/global-setup.ts"],
    // A file's first request starts its isolate and loads the gateway (seconds when nine files
    // start at once on two cores): 5 s is too close for the first test of a file.
    testTimeout: 15_000,
  },
});
