import { importJWK, type JWK, SignJWT } from "jose";
import { inject } from "vitest";

/** The two signing algorithms the Worker accepts. */
export type TestAlg = "RS256" | "ES256";

/** Options for {@link tokenFor}. */
export interface TokenOptions {
  /** Signing algorithm; picks the matching published test key. Default `RS256`. */
  alg?: TestAlg;
  /**
   * Claims merged over the defaults (`iss`, `aud`, `sub`, `iat`, `exp`). A claim set to
   * `undefined` is dropped from the token, e.g. `{ sub: undefined }` for a token without `sub`.
   */
  claims?: Record<string, unknown>;
  /** Lifetime from now; negative for an already expired token. Default 3600. */
  expiresInSeconds?: number;
  /** Overrides the `kid` header (default: the signing key's `kid`). */
  kid?: string;
  /** Signs with this private JWK instead of the published test key (e.g. a rotated key). */
  key?: JWK;
}

const DEFAULT_TTL_SECONDS = 3600;

/** The private JWK of the published test key for `alg` (see test/global-setup.ts). */
export function testPrivateJwk(alg: TestAlg): JWK {
  return JSON.parse(inject(alg === "RS256" ? "authRs256PrivateJwk" : "authEs256PrivateJwk")) as JWK;
}

/** The issuer, audience and JWKS server origin the test Worker is configured with. */
export function testAuthSettings(): { issuer: string; audience: string; jwksOrigin: string } {
  return {
    issuer: inject("authIssuer"),
    audience: inject("authAudience"),
    jwksOrigin: inject("authJwksOrigin"),
  };
}

/**
 * A JWT for `userId` that the test Worker accepts (issuer, audience and key of the test
 * identity provider), unless `opts` deliberately break it.
 */
export async function tokenFor(userId: string, opts: TokenOptions = {}): Promise<string> {
  const jwk = opts.key ?? testPrivateJwk(opts.alg ?? "RS256");
  const alg = opts.key
    ? (opts.key.alg ?? opts.alg ?? (opts.key.kty === "EC" ? "ES256" : "RS256"))
    : (opts.alg ?? "RS256");
  const { issuer, audience } = testAuthSettings();
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: issuer,
    aud: audience,
    sub: userId,
    iat: now,
    exp: now + (opts.expiresInSeconds ?? DEFAULT_TTL_SECONDS),
    ...opts.claims,
  };
  // JSON serialisation drops undefined members, which is how callers remove a claim.
  const key = await importJWK(jwk, alg);
  const kid = opts.kid ?? jwk.kid;
  return new SignJWT(payload as never)
    .setProtectedHeader({ alg, typ: "JWT", ...(kid ? { kid } : {}) })
    .sign(key);
}

/** `{ authorization: "Bearer <token>" }` for `userId`, ready to spread into request headers. */
export async function authHeaders(userId: string): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await tokenFor(userId)}` };
}
