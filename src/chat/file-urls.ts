/**
 * Short-lived signed URLs of uploaded files' bytes, for DashScope to fetch an image by URL instead
 * of receiving it as a base64 data URL (`FILE_URL_BASE`, `FILE_URL_SECRET`):
 * `<base>/v1/files/<id>/content?expires=<unix seconds>&signature=<hex>`, where the signature is
 * HMAC-SHA256 under the secret of `<id>.<expires>`. `GET /v1/files/{id}/content` serves such a URL
 * without a bearer token until it expires; anyone holding it may read the file meanwhile, which
 * is what giving DashScope a URL means.
 */

const encoder = new TextEncoder();

/** The signed part of a URL: the file and the moment the URL stops working. */
const signedText = (fileId: string, expires: number) => encoder.encode(`${fileId}.${expires}`);

function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    usage,
  ]);
}

const toHex = (bytes: ArrayBuffer) =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");

/** A URL of `fileId`'s bytes valid for `ttlSeconds` from `now` (Unix ms). */
export async function signedFileUrl(
  urls: { base: string; secret: string; ttlSeconds: number },
  fileId: string,
  now: number,
): Promise<string> {
  const expires = Math.floor(now / 1000) + urls.ttlSeconds;
  const signature = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(urls.secret, "sign"),
    signedText(fileId, expires),
  );
  return `${urls.base}/v1/files/${fileId}/content?expires=${expires}&signature=${toHex(signature)}`;
}

/**
 * Whether `signature` (hex) signs `fileId` until `expires` (Unix seconds, as given in the URL)
 * and that moment is still to come. `crypto.subtle.verify` compares in constant time.
 */
export async function verifyFileSignature(
  secret: string,
  fileId: string,
  expires: string,
  signature: string,
  now: number,
): Promise<boolean> {
  if (!/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature)) return false;
  if (Number(expires) * 1000 <= now) return false;
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = Number.parseInt(signature.slice(i * 2, i * 2 + 2), 16);
  return crypto.subtle.verify(
    "HMAC",
    await hmacKey(secret, "verify"),
    bytes,
    signedText(fileId, Number(expires)),
  );
}
