/**
 * The labels mcp2 puts on every container it starts. Ownership is decided by them alone, so an
 * agent may never set a label with this prefix itself.
 */
export const LABEL_PREFIX = "mcpcp.";

export const LABELS = {
  /** `true` on every container mcp2 started. */
  managed: `${LABEL_PREFIX}managed`,
  /** The agent that started it. */
  agent: `${LABEL_PREFIX}agent`,
  /** One id per `run` call, to find its container after the CLI was killed. */
  run: `${LABEL_PREFIX}run`,
  /** Unix seconds after which the reaper kills and removes it. */
  deadline: `${LABEL_PREFIX}deadline`,
} as const;
