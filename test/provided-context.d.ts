// What test/global-setup.ts hands to the tests (`project.provide`, read with `inject`). Included by both
// tsconfig.json (tests in workerd) and tsconfig.node.json (the setup itself), so both agree on it.
export {};

declare module "vitest" {
  export interface ProvidedContext {
    /** The DashScope stand-in (tools/dashscope-stand-in/): its `/v1`-style base URL, key and control origin. */
    standInBaseUrl: string;
    standInApiKey: string;
    standInControlUrl: string;
    /**
     * A second stand-in for the context-cache tests (test/context-cache.test.ts): any `sk-` key is
     * accepted (the cache is per key), TTLs short enough to wait out ({@link standInCacheTtlMs}).
     */
    standInCacheOrigin: string;
    standInCacheTtlMs: number;
    /** The identity provider stand-in (test/support/jwks-server.mjs). */
    authJwksOrigin: string;
    authJwksUrl: string;
    authIssuer: string;
    authAudience: string;
    /** Private JWKs (JSON) of the published test keys; `kid` and `alg` included. */
    authRs256PrivateJwk: string;
    authEs256PrivateJwk: string;
    /**
     * The webhook receiver (test/support/webhook-receiver.mjs), "webhooks" project only: where the
     * Worker POSTs, its control origin, and the signing secret both sides use.
     */
    webhookUrl: string;
    webhookReceiverOrigin: string;
    webhookSecret: string;
    /** The relay that gives the Worker a public origin for signed file URLs (test/support/file-url-relay.mjs). */
    fileUrlRelayOrigin: string;
  }
}
