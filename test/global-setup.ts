import type { TestProject } from "vitest/node";
// @ts-expect-error plain ESM module without type declarations
import { startStandIn } from "../tools/dashscope-stand-in/server.mjs";
import { startFileUrlRelay } from "./support/file-url-relay.mjs";
import { startJwksServer } from "./support/jwks-server.mjs";

const STAND_IN_API_KEY = "sk-stand-in-test-key";
/** Explicit and implicit TTL of the context-cache stand-in: short, so a test can wait one out. */
const CACHE_STAND_IN_TTL_MS = 3_000;
/** Issuer and audience the test Worker accepts (test/helpers/auth.ts signs tokens with them). */
const AUTH_ISSUER = "https://issuer.test/";
const AUTH_AUDIENCE = "edge-chat-test";

/** Starts the DashScope stand-in once for the whole run and hands its address to the Worker. */
export default async function setup(project: TestProject) {
  const standIn = await startStandIn({ host: "127.0.0.1", port: 0, apiKey: STAND_IN_API_KEY });
  project.provide("standInBaseUrl", standIn.baseUrl);
  project.provide("standInApiKey", STAND_IN_API_KEY);
  project.provide("standInControlUrl", standIn.origin);
  // Its own process-wide cache: no other test's requests can hit or evict what these tests create.
  const cacheStandIn = await startStandIn({
    host: "127.0.0.1",
    port: 0,
    cacheTtlMs: CACHE_STAND_IN_TTL_MS,
    implicitCacheTtlMs: CACHE_STAND_IN_TTL_MS,
  });
  project.provide("standInCacheOrigin", cacheStandIn.origin);
  project.provide("standInCacheTtlMs", CACHE_STAND_IN_TTL_MS);

  // The identity provider stand-in: a JWKS server plus the private keys tests sign with.
  const jwks = await startJwksServer({ host: "127.0.0.1", port: 0 });
  project.provide("authJwksOrigin", jwks.origin);
  project.provide("authJwksUrl", `${jwks.origin}/jwks/main.json`);
  project.provide("authIssuer", AUTH_ISSUER);
  project.provide("authAudience", AUTH_AUDIENCE);
  project.provide("authRs256PrivateJwk", JSON.stringify(jwks.rs256PrivateJwk));
  project.provide("authEs256PrivateJwk", JSON.stringify(jwks.es256PrivateJwk));
  // The public origin of signed file URLs (test/signed-file-urls.test.ts).
  const relay = await startFileUrlRelay({ host: "127.0.0.1", port: 0 });
  project.provide("fileUrlRelayOrigin", relay.origin);
  return async () => {
    await standIn.close();
    await cacheStandIn.close();
    await jwks.close();
    await relay.close();
  };
}
