import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { unauthorized } from "../auth/auth-errors";
import { bearerToken } from "../auth/bearer";
import { loadConfig } from "../config";
import { ApiError } from "../errors/api-error";

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
 * Guards the operator routes with `Authorization: Bearer <ADMIN_TOKEN>`. Without a usable
 * `ADMIN_TOKEN` (unset, or shorter than {@link MIN_ADMIN_TOKEN_CHARS}) the routes answer 404,
 * as if they did not exist. Any other bearer, a user's JWT or API key included, is 401.
 */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  const expected = (c.get("config") ?? loadConfig(c.env)).adminToken;
  if (expected.length < MIN_ADMIN_TOKEN_CHARS) {
    if (expected !== "" && !warnedShortToken) {
      warnedShortToken = true;
      console.error(
        JSON.stringify({
          level: "error",
          message: `ADMIN_TOKEN is shorter than ${MIN_ADMIN_TOKEN_CHARS} characters; operator routes are off`,
        }),
      );
    }
    throw new ApiError(404, "not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}.`);
  }
  const token = bearerToken(c.req.header("authorization"));
  if (!(await adminTokenMatches(token, expected)))
    throw unauthorized("The operator token is not valid.", "invalid_token");
  await next();
};
