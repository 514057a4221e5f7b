// Prints a JWT the locally running Worker (`npm run dev`) accepts:
//   npm run token -- <user-id> [--ttl <seconds>]
// Signed with the dev key from scripts/dev-auth.mjs, created on first use.
import path from "node:path";
import { parseArgs } from "node:util";
import { importJWK, SignJWT } from "jose";
import { DEV_AUDIENCE, DEV_ISSUER, ensureDevAuth, loadDevKey } from "./dev-auth.mjs";

const DEFAULT_TTL_SECONDS = 3600;
/** Longest lifetime a dev token may have, in seconds (30 days). */
const MAX_TTL_SECONDS = 30 * 24 * 3600;
/** Mirrors MAX_SUBJECT_CHARS in src/auth/verify-jwt.ts. */
const MAX_USER_ID_CHARS = 255;

function usage(message) {
  console.error(`${message}\nUsage: npm run token -- <user-id> [--ttl <seconds>]`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { ttl: { type: "string" } } });
} catch (err) {
  usage(err.message);
}
const [userId, ...extra] = parsed.positionals;
if (!userId || extra.length > 0) usage("Give exactly one user id.");
if (userId.length > MAX_USER_ID_CHARS) usage(`The user id must be at most ${MAX_USER_ID_CHARS} characters.`);
const ttl = parsed.values.ttl === undefined ? DEFAULT_TTL_SECONDS : Number(parsed.values.ttl);
if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS)
  usage(`--ttl must be a whole number of seconds between 1 and ${MAX_TTL_SECONDS}.`);

const root = path.resolve(import.meta.dirname, "..");
const { created } = await ensureDevAuth(root);
if (created)
  console.error(
    "Created a dev signing key in .dev-auth/ and set AUTH_DEV_JWKS in .dev.vars; restart `npm run dev` if it is running.",
  );
const jwk = await loadDevKey(root);
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ sub: userId })
  .setProtectedHeader({ alg: jwk.alg ?? "ES256", kid: jwk.kid, typ: "JWT" })
  .setIssuer(DEV_ISSUER)
  .setAudience(DEV_AUDIENCE)
  .setIssuedAt(now)
  .setExpirationTime(now + ttl)
  .sign(await importJWK(jwk, jwk.alg ?? "ES256"));
console.log(token);
