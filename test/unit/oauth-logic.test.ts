// The OAuth pieces that are plain data: who a person signs in as, and reading the settings.
import { describe, expect, it } from "vitest";
import { readOAuthSettings } from "../../workers/proxy/src/core/oauth-settings.ts";
import { agentFor, type Person } from "../../workers/proxy/src/oauth/people.ts";

const person = (over: Partial<Person> = {}): Person => ({
  issuer: "https://idp.example",
  subject: "s1",
  email: "ann@example.test",
  emailVerified: true,
  groups: [],
  ...over,
});

describe("agentFor", () => {
  const people = {
    emails: { "ann@example.test": "research" },
    groups: { staff: "helpdesk", ops: "operator", "ops-oncall": "operator" },
  };

  it("maps a verified email first, before any group", () => {
    expect(agentFor(people, person({ groups: ["staff"] }))).toEqual({
      ok: true,
      agent: "research",
      via: "email ann@example.test",
    });
  });

  it("never maps an unverified email", () => {
    expect(agentFor(people, person({ emailVerified: false }))).toMatchObject({
      ok: false,
      reason: "unmapped",
      detail: "ann@example.test (unverified) is not mapped to an agent",
    });
    expect(agentFor(people, person({ emailVerified: false, groups: ["staff"] }))).toMatchObject({
      ok: true,
      agent: "helpdesk",
    });
  });

  it("maps by group when groups agree, and refuses groups that name different agents", () => {
    const other = person({ email: "bob@example.test" });
    expect(agentFor(people, { ...other, groups: ["ops", "ops-oncall"] })).toMatchObject({
      ok: true,
      agent: "operator",
    });
    expect(agentFor(people, { ...other, groups: ["ops", "staff"] })).toMatchObject({
      ok: false,
      reason: "ambiguous",
    });
    expect(agentFor(people, { ...other, groups: ["visitors"] })).toMatchObject({
      ok: false,
      reason: "unmapped",
    });
  });
});

describe("readOAuthSettings", () => {
  const on = { OIDC_ISSUER: "https://idp.example", OIDC_CLIENT_ID: "gw", OIDC_CLIENT_SECRET: "s" };

  it("is off while OIDC_ISSUER is empty, so nothing else is required", () => {
    expect(readOAuthSettings({})).toEqual({ ok: true, value: null });
    expect(readOAuthSettings({ OIDC_ISSUER: "", OIDC_CLIENT_ID: "" })).toEqual({
      ok: true,
      value: null,
    });
  });

  it("reads a complete configuration", () => {
    expect(readOAuthSettings(on)).toEqual({
      ok: true,
      value: {
        upstreamIssuer: "https://idp.example",
        clientId: "gw",
        clientSecret: "s",
        registrationTtlSeconds: 30 * 86_400,
      },
    });
  });

  it("names the variable that is missing or wrong", () => {
    const error = (env: Record<string, string>) => {
      const read = readOAuthSettings(env);
      return read.ok ? null : read.error;
    };
    expect(error({ ...on, OIDC_CLIENT_ID: "" })).toMatch(/^OIDC_CLIENT_ID is not set/);
    expect(error({ ...on, OIDC_CLIENT_SECRET: "" })).toMatch(/^OIDC_CLIENT_SECRET is not set/);
    expect(error({ ...on, OIDC_ISSUER: "http://idp.example" })).toMatch(
      /^OIDC_ISSUER must be an https URL/,
    );
    expect(error({ ...on, OIDC_ISSUER: "not a url" })).toMatch(/^OIDC_ISSUER is not a URL/);
    expect(error({ ...on, OAUTH_REGISTRATION_TTL_DAYS: "0" })).toMatch(
      /^OAUTH_REGISTRATION_TTL_DAYS/,
    );
    expect(error({ ...on, OIDC_ISSUER: "http://127.0.0.1:8080" })).toBeNull();
  });
});
