import { sha256Hex } from "./determinism.mjs";

/**
 * What the stand-in saw of each image part (`{"type":"image_url","image_url":{"url":…}}`, PROTOCOL.md §4),
 * so a test can prove the model got the exact bytes a client uploaded: a data URL is decoded and hashed;
 * an http(s) URL of this machine is downloaded, as DashScope downloads it, and its body hashed
 * ({@link fetchUrlImages}); any other URL is recorded as given.
 */

/** DashScope's limit on one data URL, in characters: `Exceeded limit on max bytes per data-uri item : 10485760` (PROTOCOL.md §4). */
export const MAX_DATA_URL_CHARS = 10_485_760;

/**
 * @typedef {{ message: number, part: number, kind: "data_url", media_type: string, bytes: number, sha256: string }
 *   | { message: number, part: number, kind: "url", url: string, media_type: string | null, bytes: number | null, sha256: string | null }} ImagePart
 *   `message` and `part` are 0-based indexes into `messages` and the message's `content` array.
 */

/**
 * The URLs of every image part of every message, in order.
 * @param {any} body the parsed request body
 * @returns {{ message: number, part: number, url: string }[]}
 */
function imageUrls(body) {
  /** @type {{ message: number, part: number, url: string }[]} */
  const urls = [];
  if (!Array.isArray(body?.messages)) return urls;
  body.messages.forEach((/** @type {any} */ m, /** @type {number} */ message) => {
    if (!Array.isArray(m?.content)) return;
    m.content.forEach((/** @type {any} */ p, /** @type {number} */ part) => {
      if (p?.type !== "image_url") return;
      const url = typeof p.image_url === "string" ? p.image_url : p.image_url?.url;
      if (typeof url === "string") urls.push({ message, part, url });
    });
  });
  return urls;
}

const DATA_URL = /^data:([^,]*),/i;

/**
 * Each image part of the request: a data URL's media type (as declared), decoded size and SHA-256; an
 * http(s) URL as given.
 * @param {any} body
 * @returns {ImagePart[]}
 */
export function imageParts(body) {
  return imageUrls(body).map(({ message, part, url }) => {
    const header = DATA_URL.exec(url);
    if (!header) return { message, part, kind: "url", url, media_type: null, bytes: null, sha256: null };
    const params = (header[1] ?? "").split(";");
    const isBase64 = params.slice(1).some((p) => p.trim().toLowerCase() === "base64");
    const data = url.slice(header[0].length);
    const bytes = isBase64 ? Buffer.from(data, "base64") : Buffer.from(decodeURIComponent(data), "utf8");
    return {
      message,
      part,
      kind: "data_url",
      media_type: params[0] ?? "",
      bytes: bytes.length,
      sha256: sha256Hex(bytes),
    };
  });
}

/**
 * Whether any image part is a data URL longer than {@link MAX_DATA_URL_CHARS}.
 * @param {any} body
 * @returns {boolean}
 */
export function hasOversizedDataUrl(body) {
  return imageUrls(body).some(({ url }) => url.length > MAX_DATA_URL_CHARS && /^data:/i.test(url));
}

/** How long one image download may take before it counts as unreachable. */
const FETCH_TIMEOUT_MS = 5_000;

/**
 * Downloads each http(s) image of `images` served by this machine (all at once), as DashScope downloads
 * an image given by URL, and records what came: the response's media type, byte count and SHA-256. Only
 * loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`: a test's own servers) are fetched; any other URL
 * stays recorded as given, with null fields, so no test depends on the internet. Returns the first URL
 * whose server answered with an error status, which DashScope reports as a failed download (a 400); null
 * when none did. A loopback URL that cannot be reached at all is recorded as given too.
 * @param {ImagePart[]} images updated in place
 * @returns {Promise<{ url: string, status: number } | null>}
 */
export async function fetchUrlImages(images) {
  /** @type {{ url: string, status: number } | null} */
  let failed = null;
  await Promise.all(
    images.map(async (image) => {
      if (image.kind !== "url" || !isLoopbackUrl(image.url)) return;
      let res;
      try {
        res = await fetch(image.url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      } catch {
        return;
      }
      if (!res.ok) {
        await res.body?.cancel();
        failed ??= { url: image.url, status: res.status };
        return;
      }
      const bytes = Buffer.from(await res.arrayBuffer());
      image.media_type = (res.headers.get("content-type") ?? "").split(";")[0]?.trim() || null;
      image.bytes = bytes.length;
      image.sha256 = sha256Hex(bytes);
    }),
  );
  return failed;
}

/**
 * @param {string} url
 * @returns {boolean}
 */
function isLoopbackUrl(url) {
  const parsed = URL.parse(url);
  if (!parsed || !/^https?:$/.test(parsed.protocol)) return false;
  const host = parsed.hostname;
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
