/**
 * What the launcher checks before it starts anything, by the proxy's own rules
 * (`workers/proxy/src/core`): the agent JWKS, `EXTRA_BACKENDS`, and the policy against every server
 * the system will have, the ones the launcher starts and the extra ones it fronts. Plain text in,
 * tagged result out, so a document the proxy would refuse fails at launch with the proxy's message.
 */

import { compileCondition } from "../workers/proxy/src/core/conditions.ts";
import { type ExtraBackendSpec, parseExtraBackends } from "../workers/proxy/src/core/config.ts";
import type { ParseResult } from "../workers/proxy/src/core/documents.ts";
import { parseJwks } from "../workers/proxy/src/core/jwks.ts";
import { parsePolicy } from "../workers/proxy/src/core/policy.ts";

export interface LaunchInput {
  /** keys/jwks.json, the agent tokens' public keys. */
  jwks: string;
  /** The policy document, and the file it came from, for the message. */
  policy: string;
  policyFile: string;
  /** `EXTRA_BACKENDS` from the launcher's environment; unset or empty means none. */
  extraBackends: string | undefined;
  /** The servers the launcher starts itself (mcp1, mcp2, mcp3). */
  builtIn: readonly string[];
}

export interface LaunchConfig {
  /** The extra backends, validated, in the order given. */
  extraBackends: ExtraBackendSpec[];
}

/** Where a user learns how to add a server of their own. */
function howToAdd(builtIn: readonly string[]): string {
  return (
    `Servers beyond ${builtIn.join(", ")} come from EXTRA_BACKENDS in the environment of npm start` +
    ' (README.md, "Adding a backend").'
  );
}

/** Checks the launch's documents, or says what is wrong, naming the variable or file. */
export function checkLaunchConfig(input: LaunchInput): ParseResult<LaunchConfig> {
  const jwks = parseJwks(input.jwks);
  if (!jwks.ok) return jwks;
  const extra = parseExtraBackends(input.extraBackends, input.builtIn);
  if (!extra.ok) return extra;
  const known = [...input.builtIn, ...extra.value.map((backend) => backend.id)];
  const policy = parsePolicy(input.policy, known, compileCondition);
  if (!policy.ok) {
    return { ok: false, error: `${input.policyFile}: ${policy.error}. ${howToAdd(input.builtIn)}` };
  }
  return { ok: true, value: { extraBackends: extra.value } };
}
