/** The repository root, which every path the benchmark uses is relative to. */
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..");
