/**
 * Which agent a person signs in as: plain data in, tagged result out, no I/O. The operator maps
 * people to agents of the policy in the run-time store (`control/document.ts`, `people`): by
 * verified email first, else by a group their ID token names. Anything unclear is refused.
 */
import type { PeopleEntry } from "../control/document.ts";

/** A person as the upstream provider's verified ID token describes them. */
export interface Person {
  /** The upstream issuer and its subject: who they are, whatever their email becomes. */
  issuer: string;
  subject: string;
  /** Lower-cased; null when the token has none. */
  email: string | null;
  /** The provider's `email_verified`: an unverified address maps to nothing. */
  emailVerified: boolean;
  groups: string[];
}

export type Mapping =
  | { ok: true; agent: string; via: string }
  | { ok: false; reason: "unmapped" | "ambiguous"; detail: string };

/** The agent `person` acts as under `people`, or why they may not sign in. */
export function agentFor(people: PeopleEntry, person: Person): Mapping {
  // An address the provider has not verified could be anyone's: it never maps (fail closed).
  if (person.email !== null && person.emailVerified) {
    const agent = people.emails[person.email];
    if (agent !== undefined) return { ok: true, agent, via: `email ${person.email}` };
  }
  const byGroup = new Map<string, string>();
  for (const group of [...person.groups].sort()) {
    const agent = people.groups[group];
    if (agent !== undefined && !byGroup.has(agent)) byGroup.set(agent, group);
  }
  if (byGroup.size === 1) {
    const [[agent, group]] = [...byGroup] as [[string, string]];
    return { ok: true, agent, via: `group ${group}` };
  }
  if (byGroup.size > 1) {
    // Two groups naming two agents: picking one would grant what the operator may not mean.
    return {
      ok: false,
      reason: "ambiguous",
      detail: `groups map to several agents (${[...byGroup.keys()].sort().join(", ")})`,
    };
  }
  return {
    ok: false,
    reason: "unmapped",
    detail: person.email
      ? `${person.email}${person.emailVerified ? "" : " (unverified)"} is not mapped to an agent`
      : "no email or group of this person is mapped to an agent",
  };
}
