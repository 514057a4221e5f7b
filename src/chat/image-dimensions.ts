import { imageSize } from "image-size";

/** An image's pixel size as its header states it. */
export interface ImageDimensions {
  width: number;
  height: number;
}

/**
 * The pixel size an image's header states: JPEG's SOF marker, PNG's IHDR chunk, WebP's VP8,
 * VP8L or VP8X chunk, HEIF's `ispe` property; `null` when the bytes are no image `image-size`
 * knows, or their header is cut off before the size.
 *
 * `image-size` (pure JS, no Node APIs on its Uint8Array entry point) rather than four parsers of
 * our own: JPEG alone needs a marker walk over APP segments (EXIF, ICC) of any length before the
 * SOF, and HEIF a box walk; the library covers each with its own tests.
 */
export function imageDimensions(bytes: Uint8Array): ImageDimensions | null {
  try {
    const { width, height } = imageSize(bytes);
    return width > 0 && height > 0 ? { width, height } : null;
  } catch {
    return null;
  }
}

/**
 * How much of a data URL's base64 is decoded to find the size: 256 KiB of text, 192 KiB of
 * bytes. A JPEG's SOF comes after its APP segments, each at most 64 KiB (EXIF with its
 * thumbnail, ICC profile, XMP), so a phone photo's size is nearly always inside; an image whose
 * size lies further in counts as the largest image (see `imageTokens`).
 */
const DATA_URL_SCAN_CHARS = 262_144;

/** The pixel size of a base64 `data:` URL's image, from the start of its payload; null when unknown. */
export function dataUrlImageDimensions(url: string): ImageDimensions | null {
  const comma = url.indexOf(",", 0);
  if (comma < 0 || !/;base64$/i.test(url.slice(0, comma))) return null;
  // A multiple of 4 characters decodes without padding trouble.
  const text = url.slice(comma + 1, comma + 1 + DATA_URL_SCAN_CHARS);
  let binary: string;
  try {
    binary = atob(text.slice(0, text.length - (text.length % 4)));
  } catch {
    return null;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return imageDimensions(bytes);
}
