import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { unauthorized } from "../auth/auth-errors";
import { bearerToken } from "../auth/bearer";
import { isLocalHostname } from "../auth/dev-mode";
import { loadConfig } from "../config";
import { ApiError } from "../errors/api-error";
import { logError } from "../log/log";

/** An operator token shorter than this is refused as a setting (the routes stay off). */
export const MIN_ADMIN_TOKEN_CHARS = 32;

let warnedShortToken = false;

async function sha256(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/**
 * Whether `presented` equals `expected`, in time independent of where they differ: the SHA-256
 * digests are compared (fixed length, so the length of the secret does not leak either) with
 * workerd's `crypto.subtle.timingSafeEqual`.
 */
export async function adminTokenMatches(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(presented), sha256(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Why the operator routes are off, for a request to a local `wrangler dev` (localhost,
 * 127.0.0.1, [::1]); there the developer needs to know what to set. Any other host (a
 * deployment) gets exactly the 404 of an unknown route, so a deployment that keeps the routes
 * off does not reveal that they exist.
 */
function disabledMessage(expected: string, method: string, url: URL): string {
  if (!isLocalHostname(url.hostname)) return `No route for ${method} ${url.pathname}.`;
  const problem =
    expected === ""
      ? "ADMIN_TOKEN is not set"
      : `ADMIN_TOKEN is shorter than ${MIN_ADMIN_TOKEN_CHARS} characters`;
  return (
    `Operator routes are off: ${problem}. For local development put ADMIN_TOKEN (at least ` +
    `${MIN_ADMIN_TOKEN_CHARS} characters) in .dev.vars and restart \`npm run dev\`, which writes one when it is missing.`
  );
}

/**
 * Guards the operator routes with `Authorization: Bearer <ADMIN_TOKEN>`. Without a usable
 * `ADMIN_TOKEN` (unset, or shorter than {@link MIN_ADMIN_TOKEN_CHARS}) the routes answer 404
 * `not_found`, as if they did not exist (on a local host the message says why). Any other
 * bearer, a user's JWT or API key included, is 401.
 */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  const expected = (c.get("config") ?? loadConfig(c.env)).adminToken;
  if (expected.length < MIN_ADMIN_TOKEN_CHARS) {
    if (expected !== "" && !warnedShortToken) {
      warnedShortToken = true;
      logError("config.admin_token_too_short", {
        message: `ADMIN_TOKEN is shorter than ${MIN_ADMIN_TOKEN_CHARS} characters; operator routes are off`,
      });
    }
    throw new ApiError(404, "not_found", disabledMessage(expected, c.req.method, new URL(c.req.url)));
  }
  const token = bearerToken(c.req.header("authorization"));
  if (!(await adminTokenMatches(token, expected)))
    throw unauthorized("The operator token is not valid.", "invalid_token");
  await next();
};
