/**
 * Shape limits on a parsed request body, checked before anything acts on it. A body can be small
 * and still hostile: ten thousand nested arrays, or one string that a backend will copy a dozen
 * times. Plain functions, unit-tested in Node.
 */

export const LIMITS = {
  /** Deepest nesting of arrays and objects. MCP messages need a handful of levels. */
  maxDepth: 64,
  /** Longest single string (UTF-16 units): code or a markdown report fits; a flood does not. */
  maxStringLength: 1_048_576,
  /** Most messages in one JSON-RPC batch. */
  maxBatch: 32,
} as const;

/** Why a body breaks a limit, or undefined when it is within all of them. */
export function shapeViolation(body: unknown, limits = LIMITS): string | undefined {
  if (Array.isArray(body) && body.length > limits.maxBatch) {
    return `a batch may hold at most ${limits.maxBatch} messages`;
  }
  // Iterative walk: a recursive one would itself overflow the stack on the bodies it guards.
  const stack: [unknown, number][] = [[body, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value === "string") {
      if (value.length > limits.maxStringLength) {
        return `strings are limited to ${limits.maxStringLength} characters`;
      }
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (depth > limits.maxDepth) return `JSON is nested deeper than ${limits.maxDepth} levels`;
    for (const [key, child] of Object.entries(value)) {
      if (key.length > limits.maxStringLength) {
        return `strings are limited to ${limits.maxStringLength} characters`;
      }
      stack.push([child, depth + 1]);
    }
  }
  return undefined;
}
