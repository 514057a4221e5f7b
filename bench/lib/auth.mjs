import { exportJWK, generateKeyPair, SignJWT } from "jose";

/** Local development auth for the bench: an ES256 key pair made in this process (see src/auth/dev-mode.ts). */

const DEV_ISSUER = "edge-chat-dev";
const DEV_AUDIENCE = "edge-chat-dev";
const KID = "edge-chat-bench-1";
const TOKEN_TTL_SECONDS = 3600;

/**
 * A fresh key pair: its public JWKS for the Worker's `AUTH_DEV_JWKS` binding, and a token signer.
 * @returns {Promise<{ jwksJson: string, tokenFor(userId: string): Promise<string> }>}
 */
export async function createDevAuth() {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: "ES256", use: "sig" };
  const tokens = new Map();
  return {
    jwksJson: JSON.stringify({ keys: [jwk] }),
    async tokenFor(userId) {
      let token = tokens.get(userId);
      if (!token) {
        const now = Math.floor(Date.now() / 1000);
        token = await new SignJWT({ sub: userId })
          .setProtectedHeader({ alg: "ES256", kid: KID, typ: "JWT" })
          .setIssuer(DEV_ISSUER)
          .setAudience(DEV_AUDIENCE)
          .setIssuedAt(now)
          .setExpirationTime(now + TOKEN_TTL_SECONDS)
          .sign(privateKey);
        tokens.set(userId, token);
      }
      return token;
    },
  };
}
