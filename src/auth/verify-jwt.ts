import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import type { ApiError } from "../errors/api-error";
import { hasControlCharacter } from "../text/control-characters";
import { invalidToken } from "./auth-errors";

/**
 * Signature algorithms accepted. Asymmetric only: `none` would accept unsigned tokens and
 * HS256 would let anyone holding the public key (which is published) forge tokens.
 */
export const ALLOWED_ALGORITHMS = ["RS256", "ES256"] as const;
/** Longest `sub` accepted, in characters (it becomes the user id). */
export const MAX_SUBJECT_CHARS = 255;

/**
 * Whether `sub` can be a user id: 1–{@link MAX_SUBJECT_CHARS} characters of well-formed Unicode
 * without control characters (it is stored, shown to operators and put in URLs).
 */
export function isAcceptableSubject(sub: string): boolean {
  return sub.length > 0 && sub.length <= MAX_SUBJECT_CHARS && sub.isWellFormed() && !hasControlCharacter(sub);
}

/** Where the verification keys come from: a cached remote JWKS, or a fixed set in dev mode. */
export interface KeySource {
  getKeys(): Promise<JSONWebKeySet>;
  /**
   * A newer key set after a token named `kid` (undefined: no `kid`) that the set lacks, or
   * null if none can be had right now.
   */
  refreshForUnknownKid(kid?: string): Promise<JSONWebKeySet | null>;
}

/** Everything {@link verifyAccessToken} checks a token against. */
export interface VerifyDeps {
  keys: KeySource;
  issuer: string;
  audience: string;
  /** Tolerance applied to `exp`, `nbf` and `iat`, in seconds. */
  clockSkewSeconds: number;
  /** Current time in ms; defaults to `Date.now`. */
  now?: () => number;
  /** How to get a new token, ending the expiry message; defaults to asking the identity provider. */
  renewal?: string;
}

/** A {@link KeySource} over a fixed key set (nothing to refetch). */
export function staticKeySource(jwks: JSONWebKeySet): KeySource {
  return { getKeys: async () => jwks, refreshForUnknownKid: async () => null };
}

/**
 * Verifies a bearer JWT: RS256/ES256 signature against `deps.keys`, `iss`, `aud`, `exp`
 * (required), `nbf`, an `iat` not in the future, and a `sub` that {@link isAcceptableSubject}.
 * All time claims get `deps.clockSkewSeconds` of tolerance. On an unknown `kid` it asks the key
 * source for a newer set and retries once.
 *
 * Throws a 401 `ApiError` for any unacceptable token; lets `JwksUnavailableError` through.
 */
export async function verifyAccessToken(token: string, deps: VerifyDeps): Promise<{ userId: string }> {
  let alg: unknown;
  let kid: unknown;
  try {
    ({ alg, kid } = decodeProtectedHeader(token));
  } catch {
    throw invalidToken("The bearer token is not a well-formed JWT.");
  }
  if (typeof alg !== "string" || !(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) {
    throw invalidToken(
      "The token's signing algorithm is not accepted; tokens must be signed with RS256 or ES256.",
    );
  }

  const keys = await deps.keys.getKeys();
  let payload: JWTPayload;
  try {
    payload = await verifyWithKeySet(token, keys, deps);
  } catch (err) {
    if (!(err instanceof errors.JWKSNoMatchingKey)) throw toApiError(err, deps);
    // Key rotation: the IdP may have published a key we have not cached yet. When the refetch
    // is throttled, another request may still have refreshed the set in the meantime.
    const fresh =
      (await deps.keys.refreshForUnknownKid(typeof kid === "string" ? kid : undefined)) ??
      (await deps.keys.getKeys());
    if (fresh === keys) throw toApiError(err, deps);
    try {
      payload = await verifyWithKeySet(token, fresh, deps);
    } catch (retryErr) {
      throw toApiError(retryErr, deps);
    }
  }

  // jose checks that `iat` is a number but, without `maxTokenAge`, not that it has passed.
  const nowSeconds = (deps.now ?? Date.now)() / 1000;
  if (typeof payload.iat === "number" && payload.iat > nowSeconds + deps.clockSkewSeconds) {
    throw invalidToken('The token was issued in the future (its "iat" is ahead of this server\'s clock).');
  }

  const sub = payload.sub;
  if (typeof sub !== "string" || !isAcceptableSubject(sub)) {
    throw invalidToken(
      `The token's "sub" claim must be a non-empty string of at most ${MAX_SUBJECT_CHARS} characters, without control characters.`,
    );
  }
  return { userId: sub };
}

async function verifyWithKeySet(token: string, jwks: JSONWebKeySet, deps: VerifyDeps): Promise<JWTPayload> {
  const options: JWTVerifyOptions = {
    algorithms: [...ALLOWED_ALGORITHMS],
    issuer: deps.issuer,
    audience: deps.audience,
    clockTolerance: deps.clockSkewSeconds,
    requiredClaims: ["exp", "sub"],
    ...(deps.now ? { currentDate: new Date(deps.now()) } : {}),
  };
  try {
    return (await jwtVerify(token, localKeySet(jwks), options)).payload;
  } catch (err) {
    // A token without `kid` can match several keys of the set; jose leaves trying each to us.
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    let last: unknown = err;
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (keyErr) {
        if (!(keyErr instanceof errors.JWSSignatureVerificationFailed)) throw keyErr;
        last = keyErr;
      }
    }
    throw last;
  }
}

/** Maps a jose failure to a helpful 401; claim names come from jose, never from the token. */
function toApiError(err: unknown, deps: Pick<VerifyDeps, "renewal">): ApiError {
  const code = err instanceof errors.JOSEError ? err.code : "";
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return invalidToken(
        `The token has expired; ${deps.renewal ?? "obtain a new one from the identity provider"}.`,
      );
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const { claim, reason } = err as errors.JWTClaimValidationFailed;
      if (reason === "missing") return invalidToken(`The token is missing the required "${claim}" claim.`);
      if (claim === "iss") return invalidToken("The token was not issued by the expected issuer.");
      if (claim === "aud")
        return invalidToken("The token is not meant for this service (audience mismatch).");
      if (claim === "nbf") return invalidToken('The token is not valid yet (its "nbf" is in the future).');
      return invalidToken(`The token's "${claim}" claim is invalid.`);
    }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return invalidToken("The token's signature is invalid.");
    case "ERR_JWKS_NO_MATCHING_KEY":
      return invalidToken("The token was signed by a key the identity provider does not publish.");
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return invalidToken(
        "The token's signing algorithm is not accepted; tokens must be signed with RS256 or ES256.",
      );
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return invalidToken("The bearer token is not a well-formed JWT.");
    default:
      return invalidToken("The bearer token could not be verified.");
  }
}

/**
 * jose imports each key (`crypto.subtle.importKey`, about a millisecond for an EC key) once per
 * `createLocalJWKSet` object; keeping that object per key set makes a warm isolate verify a
 * token without importing anything.
 */
const keySets = new WeakMap<JSONWebKeySet, ReturnType<typeof createLocalJWKSet>>();
function localKeySet(jwks: JSONWebKeySet): ReturnType<typeof createLocalJWKSet> {
  let set = keySets.get(jwks);
  if (!set) {
    set = createLocalJWKSet(jwks);
    keySets.set(jwks, set);
  }
  return set;
}
