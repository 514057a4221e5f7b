import { unauthorized } from "./auth-errors";

/** Longest bearer token accepted, in characters; real IdP tokens stay well below 4 KiB. */
export const MAX_TOKEN_CHARS = 8_192;

// RFC 6750 §2.1 b64token syntax; a JWT (three base64url parts joined by dots) fits it.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Extracts the token from an `Authorization: Bearer <token>` header, or throws 401. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === "") {
    throw unauthorized("Missing Authorization header; send `Authorization: Bearer <token>`.");
  }
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header.trim());
  if (!match) {
    throw unauthorized("Malformed Authorization header; expected `Bearer <token>`.", "invalid_request");
  }
  const token = match[1] ?? "";
  if (token.length > MAX_TOKEN_CHARS || !B64TOKEN.test(token)) {
    throw unauthorized("Malformed bearer token.", "invalid_request");
  }
  return token;
}
