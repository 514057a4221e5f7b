import { Webhook } from "standardwebhooks";

/**
 * The Standard Webhooks headers of one delivery attempt (standardwebhooks.com, "Signature
 * scheme"): `webhook-id`, `webhook-timestamp` (the attempt's Unix seconds: receivers refuse a
 * timestamp more than 5 minutes off, so a retry is signed afresh), and `webhook-signature`,
 * `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed with the secret's bytes.
 *
 * The `standardwebhooks` package computes the HMAC in plain JavaScript (`fast-sha256`), not with
 * Web Crypto, so it runs in workerd as in Node; its `Webhook.verify` is what receivers use.
 * Throws when `secret` is empty or not base64 (after its `whsec_` prefix); the error never
 * contains the secret.
 */
export function signatureHeaders(
  secret: string,
  id: string,
  body: string,
  at: Date,
): Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, body),
  };
}
