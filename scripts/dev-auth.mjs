// Local development auth: a key pair on this machine stands in for the identity provider.
// The private key lives in .dev-auth/key.json (gitignored); the public half goes into
// .dev.vars as AUTH_DEV_JWKS, which `wrangler dev` reads and `wrangler deploy` never uploads.
// The Worker honours it only for requests to localhost (see src/auth/dev-mode.ts).
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { exportJWK, generateKeyPair } from "jose";
import { setDevVar } from "./dev/dev-vars.mjs";

/** `kid` of the dev signing key. */
export const DEV_KID = "edge-chat-dev-1";
/** `iss` and `aud` the Worker requires of dev tokens (src/auth/dev-mode.ts). */
export const DEV_ISSUER = "edge-chat-dev";
export const DEV_AUDIENCE = "edge-chat-dev";
const DEV_ALG = "ES256";
const VAR_NAME = "AUTH_DEV_JWKS";

/** The public JWK of a private EC JWK: everything but the private scalar `d`. */
function publicOf(privateJwk) {
  const { d: _private, ...pub } = privateJwk;
  return { ...pub, use: "sig" };
}

/**
 * Makes sure a dev key pair exists under `rootDir` and that `.dev.vars` trusts its public half.
 * Creates `.dev-auth/key.json` (private JWK, owner-only) on first use; rewrites only the
 * `AUTH_DEV_JWKS` line of `.dev.vars` when it is missing or out of date.
 *
 * @param {string} rootDir the repository root
 * @returns {Promise<{ keyPath: string, devVarsPath: string, created: boolean }>}
 */
export async function ensureDevAuth(rootDir) {
  const dir = path.join(rootDir, ".dev-auth");
  const keyPath = path.join(dir, "key.json");
  const devVarsPath = path.join(rootDir, ".dev.vars");

  let created = false;
  if (!existsSync(keyPath)) {
    const { privateKey } = await generateKeyPair(DEV_ALG, { extractable: true });
    const privateJwk = { ...(await exportJWK(privateKey)), kid: DEV_KID, alg: DEV_ALG };
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(keyPath, `${JSON.stringify(privateJwk, null, 2)}\n`, { mode: 0o600 });
    await chmod(keyPath, 0o600);
    created = true;
  }

  const privateJwk = await loadDevKey(rootDir);
  const jwksJson = JSON.stringify({ keys: [publicOf(privateJwk)] });
  const current = existsSync(devVarsPath) ? await readFile(devVarsPath, "utf8") : "";
  const next = setDevVar(current, VAR_NAME, `'${jwksJson}'`);
  if (next !== current) await writeFile(devVarsPath, next, { mode: 0o600 });
  return { keyPath, devVarsPath, created };
}

/** Reads the private dev JWK written by {@link ensureDevAuth}. */
export async function loadDevKey(rootDir) {
  const jwk = JSON.parse(await readFile(path.join(rootDir, ".dev-auth", "key.json"), "utf8"));
  if (jwk.kty !== "EC" || typeof jwk.d !== "string")
    throw new Error(".dev-auth/key.json is not a private EC JWK");
  return jwk;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = path.resolve(import.meta.dirname, "..");
  const { keyPath, devVarsPath, created } = await ensureDevAuth(root);
  console.log(
    `${created ? "Created" : "Found"} dev signing key ${path.relative(root, keyPath)}; ${VAR_NAME} is set in ${path.relative(root, devVarsPath)}.`,
  );
}
