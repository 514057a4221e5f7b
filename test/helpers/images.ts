import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { FileView } from "../../src/resources/file";
import { BASE } from "./api";
import { authHeaders } from "./auth";

/**
 * Images for the file tests, built here byte by byte from the formats' specifications, so a test
 * knows the pixel size it declares and the bytes it sends: a valid header, then random bytes
 * (every file distinct, nothing compressible).
 */

function withFiller(head: readonly number[], size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(size, head.length));
  // getRandomValues fills at most 65,536 bytes a call.
  for (let at = 0; at < bytes.length; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  bytes.set(head, 0);
  return bytes;
}

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];

/** A JPEG: SOI, a JFIF APP0 segment, then a baseline SOF0 stating `width` × `height` (ITU-T T.81 §B.2.2). */
export function jpegOf(width: number, height: number, size = 4_000): Uint8Array {
  const app0 = [0xff, 0xe0, ...u16(16), 0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, ...u16(1), ...u16(1), 0, 0];
  const sof0 = [
    0xff,
    0xc0,
    ...u16(17),
    8,
    ...u16(height),
    ...u16(width),
    3,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
  ];
  return withFiller([0xff, 0xd8, ...app0, ...sof0], size);
}

/** A PNG: the signature, then the IHDR chunk stating `width` × `height` (ISO/IEC 15948 §11.2.2). */
export function pngOf(width: number, height: number, size = 4_000): Uint8Array {
  const ihdr = [...u32(13), 0x49, 0x48, 0x44, 0x52, ...u32(width), ...u32(height), 8, 2, 0, 0, 0, 0, 0, 0, 0];
  return withFiller([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...ihdr], size);
}

/** SHA-256 hex, computed here independently of the Worker's code. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `data:<type>;base64,<bytes>`. */
export function dataUrl(type: string, bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 8_192)
    binary += String.fromCharCode(...bytes.subarray(i, i + 8_192));
  return `data:${type};base64,${btoa(binary)}`;
}

/** Uploads `bytes` as `userId` (raw body) and returns the File. */
export async function upload(userId: string, bytes: Uint8Array, type = "image/jpeg"): Promise<FileView> {
  const res = await exports.default.fetch(`${BASE}/files?filename=photo`, {
    method: "POST",
    headers: { ...(await authHeaders(userId)), "content-type": type },
    body: bytes,
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as FileView;
}

/** A file part naming `fileId`. */
export const filePart = (fileId: string) => ({ type: "file", file: { file_id: fileId } });

/** A vision model the stand-in answers (a conversation turn streams upstream, as it takes). */
export const VISION_MODEL = "qwen3-vl-plus";
