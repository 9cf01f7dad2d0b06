/** What global-setup.ts hands the workerd tests through vitest's provide/inject. */
export type {};

declare module "vitest" {
  export interface ProvidedContext {
    /** mcp1's AGENT_JWKS for the run. */
    inspectJwks: string;
    /** The private half, to sign inspection tokens in tests. */
    inspectPrivateJwk: string;
    /** The proxy's private Ed25519 JWK for the run, to sign assertions as the proxy does. */
    proxySigningKey: string;
    /** Its public JWKS: mcp1's PROXY_JWKS. */
    proxyJwks: string;
  }
}
