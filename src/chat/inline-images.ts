import { Buffer } from "node:buffer";
import { type ImageMediaType, imageMediaType } from "./image-media-type";

/** A base64 image data URL of a turn's content, decoded. */
export interface InlineImage {
  bytes: Uint8Array;
  /** By the leading bytes, as for an upload; null when it is none of the kinds uploads take. */
  mediaType: ImageMediaType | null;
}

const BASE64_DATA_URL = /^data:[^,]*;base64,/i;

/**
 * The image of a `data:…;base64,` URL (the schema has checked its form and its size), or null for
 * any other URL. Decoded with `node:buffer` (workerd's `nodejs_compat`): native, one copy, where
 * `atob` would make a binary string of the same length first.
 */
export function decodeImageDataUrl(url: string): InlineImage | null {
  const header = BASE64_DATA_URL.exec(url.slice(0, 256));
  if (!header) return null;
  const decoded = Buffer.from(url.slice(header[0].length), "base64");
  const bytes = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
  return { bytes, mediaType: imageMediaType(bytes) };
}

/** `data:<mediaType>;base64,<bytes>`, encoded natively (`node:buffer`). */
export function toDataUrl(mediaType: string, bytes: Uint8Array): string {
  const base64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  return `data:${mediaType};base64,${base64}`;
}
