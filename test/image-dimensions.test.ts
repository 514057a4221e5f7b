import { describe, expect, it } from "vitest";
import { dataUrlImageDimensions, imageDimensions } from "../src/chat/image-dimensions";
import { imageRuleFor } from "../src/chat/models";
import { estimateContentTokens, imageTokens } from "../src/chat/tokens";
import { newUser } from "./helpers/api";
import { dataUrl, jpegOf, pngOf, upload } from "./helpers/images";
import { dbOf } from "./helpers/shards";

// The pixel size an upload's header states (migration 0013), and the tokens an image of that size
// takes by Alibaba's rule for Qwen-VL (src/chat/models.ts, VISION_MODELS).

const ascii = (text: string) => [...text].map((ch) => ch.charCodeAt(0));
const u32be = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const u24le = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff];
const u16le = (n: number) => [n & 0xff, (n >> 8) & 0xff];
const riff = (chunk: number[]) =>
  new Uint8Array([...ascii("RIFF"), 0, 0, 0, 0, ...ascii("WEBP"), ...chunk, ...new Array(64).fill(0)]);

/** WebP with a VP8X chunk (extended format): canvas width − 1 and height − 1, 24 bits each (RFC 9649 §2.7). */
const webpVp8x = (w: number, h: number) =>
  riff([...ascii("VP8X"), 10, 0, 0, 0, 0, 0, 0, 0, ...u24le(w - 1), ...u24le(h - 1)]);
/** WebP lossless: signature 0x2f, then width − 1 and height − 1 in 14 bits each, little-endian (RFC 9649 §3.2). */
function webpVp8l(w: number, h: number) {
  const bits = (w - 1) | ((h - 1) << 14);
  return riff([
    ...ascii("VP8L"),
    5,
    0,
    0,
    0,
    0x2f,
    bits & 0xff,
    (bits >> 8) & 0xff,
    (bits >> 16) & 0xff,
    (bits >>> 24) & 0xff,
  ]);
}
/** WebP lossy: a key frame's tag, the start code 9d 01 2a, then 14-bit width and height (RFC 6386 §9.1). */
const webpVp8 = (w: number, h: number) =>
  riff([...ascii("VP8 "), 10, 0, 0, 0, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, ...u16le(w), ...u16le(h)]);
/** HEIC: `ftyp` (brand heic), then `meta` › `iprp` › `ipco` › `ispe` with the image's width and height (ISO/IEC 23008-12 §6.5.3). */
function heic(w: number, h: number) {
  const ispe = [...u32be(20), ...ascii("ispe"), 0, 0, 0, 0, ...u32be(w), ...u32be(h)];
  const ipco = [...u32be(8 + ispe.length), ...ascii("ipco"), ...ispe];
  const iprp = [...u32be(8 + ipco.length), ...ascii("iprp"), ...ipco];
  const meta = [...u32be(12 + iprp.length), ...ascii("meta"), 0, 0, 0, 0, ...iprp];
  const ftyp = [...u32be(24), ...ascii("ftypheic"), 0, 0, 0, 0, ...ascii("mif1heic")];
  return new Uint8Array([...ftyp, ...meta, ...new Array(64).fill(0)]);
}

describe("the pixel size in an image's header", () => {
  it.each([
    ["JPEG (SOF0)", jpegOf(4032, 3024), 4032, 3024],
    ["PNG (IHDR)", pngOf(1170, 2532), 1170, 2532],
    ["WebP VP8X", webpVp8x(2000, 1500), 2000, 1500],
    ["WebP VP8L", webpVp8l(640, 480), 640, 480],
    ["WebP VP8", webpVp8(800, 600), 800, 600],
    ["HEIC (ispe)", heic(4284, 5712), 4284, 5712],
  ])("%s", (_, bytes, width, height) => {
    expect(imageDimensions(bytes)).toEqual({ width, height });
  });

  it("is null for bytes that state no size, and read from a data URL's start", () => {
    expect(imageDimensions(new Uint8Array([0x89, 0x50, 0x4e, 0x47]))).toBeNull();
    expect(imageDimensions(crypto.getRandomValues(new Uint8Array(100)))).toBeNull();
    expect(dataUrlImageDimensions(dataUrl("image/jpeg", jpegOf(300, 200, 100_000)))).toEqual({
      width: 300,
      height: 200,
    });
    expect(dataUrlImageDimensions("https://example.com/a.jpg")).toBeNull();
  });

  it("is stored with an upload", async () => {
    const alice = newUser("alice");
    const file = await upload(alice, heic(3024, 4032), "image/heic");
    const row = await dbOf(alice)
      .prepare("SELECT media_type, width, height FROM files WHERE id = ?")
      .bind(file.id)
      .first();
    expect(row).toEqual({ media_type: "image/heic", width: 3024, height: 4032 });
  });
});

describe("an image's tokens", () => {
  const qwen25 = { imageRule: imageRuleFor("qwen-vl-max") };
  const qwen3 = { imageRule: imageRuleFor("qwen3-vl-plus") };

  it("one per patch of the model's size, plus 2, between 4 and the cap", () => {
    // 224×448 px at 28 px a side: 8 × 16 patches (SiliconFlow's worked example of the same rule).
    expect(imageTokens({ width: 224, height: 448 }, qwen25)).toBe(128 + 2);
    // 1024×1024 rounds to 1036×1036 (37 × 37 = 1,369 patches), within the high-resolution cap.
    expect(imageTokens({ width: 1024, height: 1024 }, { ...qwen25, highResolutionImages: true })).toBe(
      1_369 + 2,
    );
    // …and above the default cap of 1,280: scaled down to 35 × 35 patches.
    expect(imageTokens({ width: 1024, height: 1024 }, qwen25)).toBe(1_225 + 2);
    // Qwen3-VL: 32 px patches; 1024×1024 is 32 × 32.
    expect(imageTokens({ width: 1024, height: 1024 }, qwen3)).toBe(1_024 + 2);
    // A 12 MP phone photo scales under Qwen3-VL's 2,560-token cap: 43 × 58 patches.
    expect(imageTokens({ width: 4000, height: 3000 }, qwen3)).toBe(2_494 + 2);
    // Tiny images take the minimum.
    expect(imageTokens({ width: 10, height: 10 }, qwen3)).toBe(4 + 2);
    // Unknown size: the cap.
    expect(imageTokens(null, qwen3)).toBe(2_560 + 2);
    expect(imageTokens(null, { ...qwen3, highResolutionImages: true })).toBe(16_384 + 2);
  });

  it("a file part counts by its upload's size; a missing or sizeless one at the cap", () => {
    const files = new Map([
      ["small", { width: 64, height: 64 }],
      ["old", null],
    ]);
    const part = (id: string) => ({ type: "file", file: { file_id: id } });
    expect(estimateContentTokens([part("small")], { ...qwen3, files })).toBe(4 + 2);
    expect(estimateContentTokens([part("old")], { ...qwen3, files })).toBe(2_560 + 2);
    expect(estimateContentTokens([part("unknown")], { ...qwen3, files })).toBe(2_560 + 2);
  });

  it("only vision models have a rule", () => {
    for (const model of [
      "qwen3-vl-plus",
      "qwen3-vl-flash-2025-10-15",
      "qwen-vl-max",
      "qvq-max",
      "qwen-omni-turbo",
      "qwen3.5-plus",
    ])
      expect(imageRuleFor(model), model).not.toBeNull();
    for (const model of ["qwen-plus", "qwen-max", "qwen3-max", "qwen-flash", "qwen-turbo", "qwq-plus"])
      expect(imageRuleFor(model), model).toBeNull();
  });
});
