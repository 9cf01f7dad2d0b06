/** What global-setup.ts hands the workerd tests through vitest's provide/inject. */
export type {};

declare module "vitest" {
  export interface ProvidedContext {
    agentJwks: string;
    agentPrivateJwk: string;
    proxySigningKey: string;
    proxyPublicJwks: string;
    policy: string;
    deadUrl: string;
    mcp3Url: string;
    mcp3Spy: string;
    mcp1Script: string;
    thirdPartyUrl: string;
    changingUrl: string;
    slowUrl: string;
    /** The stream-counting backend's base URL: `lsa` is its `/a/mcp`, `lsb` its `/b/mcp`. */
    streamsUrl: string;
    /** The conformance reference server's MCP endpoint (it ends in /mcp). */
    referenceUrl: string;
    exchangesUrl: string;
    mrtrUrl: string;
    oidcIssuer: string;
    oidcClientId: string;
    oidcClientSecret: string;
  }
}
