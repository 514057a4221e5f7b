/**
 * The image kinds an upload may be, told by their leading bytes alone (a client's declared type
 * and file name are claims; a phone's share sheet often gets them wrong). These are the still
 * image formats DashScope's vision models take (PROTOCOL.md §4: JPEG, PNG, WebP; HEIC/HEIF from
 * phones' cameras).
 *
 * Written here rather than taken from `file-type`: four signatures, fixed by their specifications,
 * against a package that recognises some 200 formats this route refuses anyway.
 */

/** A media type {@link imageMediaType} can return. */
export type ImageMediaType =
  | "image/jpeg"
  | "image/png"
  | "image/webp"
  | "image/heic"
  | "image/heic-sequence"
  | "image/heif"
  | "image/heif-sequence";

/** PNG's 8-byte signature (ISO/IEC 15948 §5.2). */
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** JPEG: SOI marker FF D8 followed by the next marker's FF (ITU-T T.81 §B.1.1.3). */
const JPEG = [0xff, 0xd8, 0xff];

/**
 * HEIF major brands in an ISO BMFF `ftyp` box (ISO/IEC 23008-12 Annex B; IANA's registrations of
 * image/heic, image/heif and their -sequence forms): `heic`/`heix` HEVC still images, `hevc`
 * HEVC image sequences, `mif1`/`msf1` the structural brands of HEIF images and sequences.
 */
const HEIF_BRANDS: Readonly<Record<string, ImageMediaType>> = {
  heic: "image/heic",
  heix: "image/heic",
  hevc: "image/heic-sequence",
  mif1: "image/heif",
  msf1: "image/heif-sequence",
};

const startsWith = (bytes: Uint8Array, signature: readonly number[], at = 0): boolean =>
  bytes.length >= at + signature.length && signature.every((b, i) => bytes[at + i] === b);

const ascii = (bytes: Uint8Array, from: number, to: number): string =>
  bytes.length >= to ? String.fromCharCode(...bytes.subarray(from, to)) : "";

/**
 * The media type of an image by its leading bytes, or `null` when it is none of the kinds above
 * (an executable, a PDF, an empty body, a GIF).
 */
export function imageMediaType(bytes: Uint8Array): ImageMediaType | null {
  if (startsWith(bytes, JPEG)) return "image/jpeg";
  if (startsWith(bytes, PNG)) return "image/png";
  // RIFF container (4-byte size) whose form type is WEBP (RFC 9649 §2).
  if (ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") return "image/webp";
  // ISO BMFF: the first box is `ftyp` (4-byte size, then the type), then the major brand.
  if (ascii(bytes, 4, 8) === "ftyp") return HEIF_BRANDS[ascii(bytes, 8, 12)] ?? null;
  return null;
}
