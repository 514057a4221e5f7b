import { ApiError } from "../errors/api-error";

/**
 * 401 `unauthorized` with the RFC 6750 challenge. `oauthError` is omitted when the request
 * carried no credentials at all (RFC 6750 §3.1). Messages never include the token.
 */
export function unauthorized(message: string, oauthError?: "invalid_request" | "invalid_token"): ApiError {
  const challenge = oauthError ? `Bearer error="${oauthError}"` : "Bearer";
  return new ApiError(401, "unauthorized", message, undefined, { "www-authenticate": challenge });
}

/** 401 for a token that was presented but is not acceptable. */
export const invalidToken = (message: string): ApiError => unauthorized(message, "invalid_token");
