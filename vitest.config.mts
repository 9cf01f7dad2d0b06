// Every test suite, as projects: unit (Node), the two Workers inside workerd, and end to end.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      "./vitest.unit.config.mts",
      "./vitest.proxy.config.mts",
      "./vitest.mcp1.config.mts",
      "./vitest.e2e.config.mts",
    ],
  },
});
