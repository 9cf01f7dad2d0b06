/**
 * mcp1 and its BattleSession Durable Object, tested inside workerd with the Workers Vitest
 * integration, against the Worker and bindings that workers/mcp1/wrangler.toml declares.
 */
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [cloudflareTest({ wrangler: { configPath: "./workers/mcp1/wrangler.toml" } })],
  test: {
    name: "mcp1-workers",
    include: ["test/workers/mcp1/**/*.test.ts"],
  },
});
