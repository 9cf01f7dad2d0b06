// Every test suite, as projects: unit (Node), the two Workers inside workerd, and end to end.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Console output of passing tests is dropped; a failing test's is printed with its failure.
    // (A root-only option: projects inherit it.)
    silent: "passed-only",
    projects: [
      "./vitest.unit.config.mts",
      "./vitest.proxy.config.mts",
      "./vitest.mcp1.config.mts",
      "./vitest.e2e.config.mts",
    ],
  },
});
