// End to end: the launcher's real processes, driven by the MCP SDK client.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "e2e",
    include: ["test/e2e/**/*.e2e.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 150_000,
    // One system on fixed ports: files must not run side by side.
    fileParallelism: false,
  },
});
