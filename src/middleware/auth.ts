import type { MiddlewareHandler } from "hono";
import { decodeJwt } from "jose";
import type { AppEnv } from "../app-env";
import { authenticateApiKey, hasApiKeyBearer } from "../auth/api-keys";
import { invalidToken, unauthorized } from "../auth/auth-errors";
import { bearerToken } from "../auth/bearer";
import {
  DEV_AUDIENCE,
  DEV_ISSUER,
  DEV_TOKEN_RENEWAL,
  devHostRefusal,
  isolateDevModeGate,
} from "../auth/dev-mode";
import { JwksCache, JwksUnavailableError } from "../auth/jwks-cache";
import { staticKeySource, type VerifyDeps, verifyAccessToken } from "../auth/verify-jwt";
import { type Config, loadConfig } from "../config";
import { ApiError } from "../errors/api-error";
import { addLogContext } from "../log/context";
import { logError } from "../log/log";
import { allShards, routedDb } from "../store/shards";

/** Production auth needs all three; without them every request is refused (fail closed). */
function productionConfigured(auth: Config["auth"]): boolean {
  return auth.jwksUrl !== "" && auth.issuer !== "" && auth.audience !== "";
}

function unverifiedIssuer(token: string): unknown {
  try {
    return decodeJwt(token).iss;
  } catch {
    return undefined;
  }
}

/**
 * Requires `Authorization: Bearer <JWT>` from the app's identity provider (or, for requests
 * to localhost with `AUTH_DEV_JWKS` set, from the local dev key) and sets `userId` to its `sub`;
 * or `Authorization: Bearer ec_…`, an API key, and sets `userId` to the key's owner.
 * Responds 401 `unauthorized` otherwise, with a `WWW-Authenticate: Bearer` challenge.
 */
export const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  const config = c.get("config") ?? loadConfig(c.env);
  // API keys do not depend on the identity provider's settings, so they are checked first.
  const header = c.req.header("authorization");
  if (hasApiKeyBearer(header)) {
    const { userId } = await authenticateApiKey(bearerToken(header), {
      shards: { routed: (hash) => routedDb(c.env, hash), all: allShards(c.env) },
      kv: c.env.CACHE,
      cacheTtlSeconds: config.apiKeyCacheTtlSeconds,
      waitUntil: (promise) => c.executionCtx.waitUntil(promise),
    });
    c.set("userId", userId);
    addLogContext({ user_id: userId });
    await next();
    return;
  }
  const { auth } = config;
  const devJwks = isolateDevModeGate(auth.devJwks, c.req.url, auth.devHosts);
  const production = productionConfigured(auth);
  // Dev mode is on but this host is not a local one: a dev token gets told why it is refused
  // (an emulator or a phone reaches `npm run dev` at another address).
  if (!devJwks && auth.devJwks.trim() !== "" && header !== undefined) {
    if (unverifiedIssuer(bearerToken(header)) === DEV_ISSUER)
      throw invalidToken(devHostRefusal(new URL(c.req.url).hostname));
  }
  if (!devJwks && !production) {
    logError("auth.not_configured", {
      message:
        "auth is not configured: AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE are required; refusing all requests",
    });
    throw unauthorized("Authentication is not available: the server's identity provider is not configured.");
  }

  const token = bearerToken(header);
  let deps: VerifyDeps;
  // With both configured on localhost, the token's (unverified) issuer only picks the key set;
  // the chosen set then verifies the signature and the issuer for real.
  if (devJwks && (!production || unverifiedIssuer(token) === DEV_ISSUER)) {
    deps = {
      keys: staticKeySource(devJwks),
      issuer: DEV_ISSUER,
      audience: DEV_AUDIENCE,
      clockSkewSeconds: auth.clockSkewSeconds,
      renewal: DEV_TOKEN_RENEWAL,
    };
  } else {
    const keys = new JwksCache(auth.jwksUrl, {
      kv: c.env.CACHE,
      // Called unbound, the global fetch throws "Illegal invocation" in workerd.
      fetch: (input, init) => fetch(input, init),
      now: Date.now,
      ttlSeconds: auth.jwksCacheTtlSeconds,
    });
    deps = { keys, issuer: auth.issuer, audience: auth.audience, clockSkewSeconds: auth.clockSkewSeconds };
  }

  try {
    const { userId } = await verifyAccessToken(token, deps);
    c.set("userId", userId);
    addLogContext({ user_id: userId });
  } catch (err) {
    if (err instanceof JwksUnavailableError) {
      logError("auth.jwks_unavailable", {
        message: "JWKS unavailable",
        jwks_url: auth.jwksUrl,
        error: err.cause,
      });
      throw new ApiError(
        502,
        "upstream_error",
        "The identity provider's signing keys could not be loaded; try again shortly.",
      );
    }
    throw err;
  }
  await next();
};
