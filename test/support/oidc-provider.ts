/**
 * A real OpenID Connect provider for the OAuth tests: `oidc-provider` on a loopback port, with its
 * development sign-in and consent forms, one confidential client (the gateway) and test people.
 * Node only: the workerd tests reach it over the loopback network, as the gateway reaches any
 * provider.
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";

/** A test person: the account id is what the sign-in form is filled in with. */
export interface TestPerson {
  email: string;
  email_verified: boolean;
  groups: string[];
  name: string;
}

export const OIDC_CLIENT = { id: "mcpcp-gateway", secret: "test-only-oidc-client-secret" };

export const TEST_PEOPLE: Record<string, TestPerson> = {
  alice: { email: "alice@example.test", email_verified: true, groups: ["staff"], name: "Alice" },
  mallory: { email: "mallory@example.test", email_verified: true, groups: [], name: "Mallory" },
};

export interface RunningProvider {
  issuer: string;
  close(): Promise<void>;
}

/**
 * oidc-provider warns, on start and on first use, that its development keys, store and forms are
 * development-only: true and intended here, and noise in a test run that went well. Those lines
 * alone are dropped; every other warning, the provider's included, still prints.
 */
function quietDevelopmentWarnings(): void {
  const warn = console.warn;
  if ((warn as { quiet?: boolean }).quiet) return;
  const filtered = (...args: unknown[]) => {
    const first = args[0];
    if (typeof first === "string" && /oidc-provider WARNING: .*development-only/.test(first))
      return;
    warn(...args);
  };
  console.warn = Object.assign(filtered, { quiet: true });
}

/** Starts the provider; `callbacks` are the gateway callback URLs it may redirect to. */
export async function startOidcProvider(callbacks: string[]): Promise<RunningProvider> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  quietDevelopmentWarnings();
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: OIDC_CLIENT.id,
        client_secret: OIDC_CLIENT.secret,
        redirect_uris: callbacks,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    async findAccount(_ctx, id) {
      const person = TEST_PEOPLE[id];
      if (!person) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...person }) };
    },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "groups"] },
    // The gateway reads email and groups from the ID token, as many providers send them.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ["oidc-test-cookie-key"] },
    pkce: { required: () => true },
  });
  provider.on("server_error", (_ctx, error) => console.error("[oidc]", error));
  server.on("request", provider.callback());
  return {
    issuer,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
