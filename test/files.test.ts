import { env, exports } from "cloudflare:workers";
import OpenAI, { toFile } from "openai";
import { describe, expect, it } from "vitest";
import type { FileView } from "../src/resources/file";
import { fileObjectKey } from "../src/store/files";
import { BASE, expectError, newUser } from "./helpers/api";
import { authHeaders, tokenFor } from "./helpers/auth";
import { dbOf } from "./helpers/shards";

// POST/GET/DELETE /v1/files against the real local R2 bucket and D1. vitest.config.ts sets
// MAX_FILE_BYTES to 65,536 for these tests (wrangler.toml keeps the 7 MiB default).
const MAX_FILE_BYTES = 65_536;

/** `bytes` of filler after a format's leading bytes, so every file is distinct and non-trivial. */
function fileOf(head: readonly number[] | string, size = 2_000): Uint8Array {
  const lead = typeof head === "string" ? [...head].map((ch) => ch.charCodeAt(0)) : head;
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 65,536 bytes a call.
  for (let at = 0; at < size; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  bytes.set(lead, 0);
  return bytes;
}

const PNG_HEAD = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_HEAD = [0xff, 0xd8, 0xff, 0xe0];
/** A RIFF container of form type WEBP (`RIFF`, 4-byte size, `WEBP`, then the first chunk). */
const WEBP_HEAD = "RIFF\x00\x00\x00\x00WEBPVP8 ";
/** An ISO BMFF `ftyp` box of major brand `heic`, as an iPhone writes it. */
const HEIC_HEAD = "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic";
/** A Linux executable's ELF magic. */
const ELF_HEAD = [0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01];

/** SHA-256 hex, computed here independently of the Worker's code. */
async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function send(userId: string, method: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = { ...(await authHeaders(userId)), ...(init.headers as Record<string, string>) };
  return exports.default.fetch(`${BASE}${path}`, { ...init, method, headers });
}

/** Uploads as React Native's `FormData` or the openai SDK does: one part `file`, plus `purpose`. */
function uploadForm(userId: string, bytes: Uint8Array, name: string, type: string): Promise<Response> {
  const form = new FormData();
  form.append("purpose", "vision");
  form.append("file", new Blob([bytes], { type }), name);
  return send(userId, "POST", "/files", { body: form });
}

function uploadRaw(userId: string, bytes: Uint8Array, type: string, query = ""): Promise<Response> {
  return send(userId, "POST", `/files${query}`, { body: bytes, headers: { "content-type": type } });
}

async function created(res: Response): Promise<FileView> {
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as FileView;
}

async function fileRowCount(userId: string): Promise<number> {
  const row = await dbOf(userId)
    .prepare("SELECT COUNT(*) AS n FROM files WHERE user_id = ?")
    .bind(userId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** Every object key in the local bucket. */
async function objectKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await env.FILES.list({ cursor });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated) return keys;
    cursor = page.cursor;
  }
}

describe("POST /v1/files", () => {
  it("stores a multipart upload; metadata and content give back the exact bytes and their SHA-256", async () => {
    const user = newUser("files");
    const bytes = fileOf(PNG_HEAD);
    const file = await created(await uploadForm(user, bytes, "cat.png", "image/png"));
    const sha256 = await sha256Hex(bytes);
    expect(file).toMatchObject({
      object: "file",
      filename: "cat.png",
      content_type: "image/png",
      bytes: bytes.byteLength,
      sha256,
    });

    const meta = await send(user, "GET", `/files/${file.id}`);
    expect(meta.status).toBe(200);
    expect(await meta.json()).toEqual(file);

    const content = await send(user, "GET", `/files/${file.id}/content`);
    expect(content.status).toBe(200);
    expect(content.headers.get("content-type")).toBe("image/png");
    const served = new Uint8Array(await content.arrayBuffer());
    expect(served).toEqual(bytes);
    expect(await sha256Hex(served)).toBe(sha256);

    // The object in R2 is the upload, under a key naming only the file's id.
    const object = await env.FILES.get(fileObjectKey(file.id));
    expect(object?.key).toBe(`files/${file.id}`);
    expect(new Uint8Array((await object?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes);
  });

  it("takes the openai SDK's files.create upload", async () => {
    const user = newUser("files");
    const sdk = new OpenAI({
      baseURL: "http://localhost/v1",
      apiKey: await tokenFor(user),
      maxRetries: 0,
      fetch: (url, init) => exports.default.fetch(url as string, init as RequestInit),
    });
    const bytes = fileOf(JPEG_HEAD);
    const uploaded = await sdk.files.create({
      file: await toFile(bytes, "IMG_0003.jpg", { type: "image/jpeg" }),
      purpose: "vision",
    });
    expect(uploaded).toMatchObject({ object: "file", filename: "IMG_0003.jpg", bytes: bytes.byteLength });
    const meta = (await (await send(user, "GET", `/files/${uploaded.id}`)).json()) as FileView;
    expect(meta).toMatchObject({ content_type: "image/jpeg", sha256: await sha256Hex(bytes) });
  });

  it("stores raw bytes, named by ?filename=", async () => {
    const user = newUser("files");
    const bytes = fileOf(JPEG_HEAD);
    const file = await created(await uploadRaw(user, bytes, "image/jpeg", "?filename=IMG_0001.jpg"));
    expect(file).toMatchObject({
      filename: "IMG_0001.jpg",
      content_type: "image/jpeg",
      bytes: bytes.byteLength,
      sha256: await sha256Hex(bytes),
    });
    const content = await send(user, "GET", `/files/${file.id}/content`);
    expect(new Uint8Array(await content.arrayBuffer())).toEqual(bytes);
  });

  it("decides the type by the leading bytes, not by the declared type or the name", async () => {
    const user = newUser("files");
    const png = fileOf(PNG_HEAD);
    const viaForm = await created(await uploadForm(user, png, "photo.jpg", "image/jpeg"));
    expect(viaForm).toMatchObject({ filename: "photo.jpg", content_type: "image/png" });
    const viaRaw = await created(await uploadRaw(user, png, "image/jpeg", "?filename=photo.jpg"));
    expect(viaRaw.content_type).toBe("image/png");
    const content = await send(user, "GET", `/files/${viaForm.id}/content`);
    expect(content.headers.get("content-type")).toBe("image/png");
    await content.arrayBuffer();

    const webp = await created(await uploadRaw(user, fileOf(WEBP_HEAD), "application/octet-stream"));
    expect(webp).toMatchObject({ content_type: "image/webp", filename: "upload" });
    const heic = await created(await uploadForm(user, fileOf(HEIC_HEAD), "IMG_0002.HEIC", ""));
    expect(heic.content_type).toBe("image/heic");
  });

  it("refuses an executable named .png (415) and stores nothing", async () => {
    const user = newUser("files");
    const before = await objectKeys();
    const elf = fileOf(ELF_HEAD);
    await expectError(
      await uploadForm(user, elf, "cat.png", "image/png"),
      415,
      "unsupported_media_type",
      "file",
    );
    await expectError(await uploadRaw(user, elf, "image/png"), 415, "unsupported_media_type", "file");
    await expectError(await uploadRaw(user, new Uint8Array(0), "image/png"), 415, "unsupported_media_type");
    expect(await fileRowCount(user)).toBe(0);
    expect(await objectKeys()).toEqual(before);
  });

  it("refuses a file over MAX_FILE_BYTES (413), counting the bytes whatever Content-Length claims", async () => {
    const user = newUser("files");
    const before = await objectKeys();
    const big = fileOf(PNG_HEAD, MAX_FILE_BYTES + 1);
    await expectError(await uploadForm(user, big, "big.png", "image/png"), 413, "payload_too_large");
    await expectError(await uploadRaw(user, big, "image/png"), 413, "payload_too_large");
    // Declared small, sent large and chunked.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(big.subarray(0, 1_000));
        controller.enqueue(big.subarray(1_000));
        controller.close();
      },
    });
    const res = await send(user, "POST", "/files", {
      body: stream,
      headers: { "content-type": "image/png", "content-length": "1000" },
    });
    await expectError(res, 413, "payload_too_large");
    // Exactly at the limit is accepted.
    const atLimit = fileOf(PNG_HEAD, MAX_FILE_BYTES);
    expect((await created(await uploadForm(user, atLimit, "max.png", "image/png"))).bytes).toBe(
      MAX_FILE_BYTES,
    );
    expect(await fileRowCount(user)).toBe(1);
    expect((await objectKeys()).length).toBe(before.length + 1);
  });

  it("refuses a form without a file part, or with two files (400, param file)", async () => {
    const user = newUser("files");
    const noFile = new FormData();
    noFile.append("purpose", "vision");
    await expectError(await send(user, "POST", "/files", { body: noFile }), 400, "invalid_request", "file");

    const asText = new FormData();
    asText.append("file", "not a file");
    await expectError(await send(user, "POST", "/files", { body: asText }), 400, "invalid_request", "file");

    const two = new FormData();
    two.append("file", new Blob([fileOf(PNG_HEAD)]), "a.png");
    two.append("file", new Blob([fileOf(PNG_HEAD)]), "b.png");
    await expectError(await send(user, "POST", "/files", { body: two }), 400, "invalid_request", "file");

    const elsewhere = new FormData();
    elsewhere.append("file", new Blob([fileOf(PNG_HEAD)]), "a.png");
    elsewhere.append("image", new Blob([fileOf(PNG_HEAD)]), "b.png");
    await expectError(
      await send(user, "POST", "/files", { body: elsewhere }),
      400,
      "invalid_request",
      "file",
    );

    const broken = await send(user, "POST", "/files", {
      body: '--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nno end',
      headers: { "content-type": "multipart/form-data; boundary=y" },
    });
    await expectError(broken, 400, "invalid_request", "file");
    expect(await fileRowCount(user)).toBe(0);
  });

  it("keeps no image bytes in D1: the row is metadata", async () => {
    const user = newUser("files");
    const bytes = fileOf(PNG_HEAD, 8_000);
    const file = await created(await uploadForm(user, bytes, "cat.png", "image/png"));
    const row = await dbOf(user).prepare("SELECT * FROM files WHERE id = ?").bind(file.id).first();
    expect(row).toEqual({
      id: file.id,
      user_id: user,
      name: "cat.png",
      media_type: "image/png",
      bytes: 8_000,
      sha256: file.sha256,
      // Random bytes after the signature: no IHDR, so no pixel size (migration 0013).
      width: null,
      height: null,
      created_at: expect.any(Number),
      deleted_at: null,
    });
    // The stored milliseconds, shown cut to the whole second.
    expect(Math.floor(Number(row?.created_at) / 1000) * 1000).toBe(Date.parse(file.created_at));
    // Nothing of that size anywhere in the row, in any encoding.
    const stored = await dbOf(user)
      .prepare(
        "SELECT SUM(LENGTH(CAST(name AS BLOB)) + LENGTH(media_type) + LENGTH(sha256)) AS n FROM files WHERE user_id = ?",
      )
      .bind(user)
      .first<{ n: number }>();
    expect(stored?.n).toBeLessThan(200);
  });
});

describe("GET and DELETE /v1/files/{id}", () => {
  it("shows a file only to its owner: another user's, unknown and malformed ids are 404 on every route", async () => {
    const owner = newUser("files");
    const other = newUser("files");
    const bytes = fileOf(PNG_HEAD);
    const file = await created(await uploadForm(owner, bytes, "mine.png", "image/png"));
    for (const id of [file.id, "0190a4b2-0000-7000-8000-000000000000", "nope"]) {
      await expectError(await send(other, "GET", `/files/${id}`), 404, "not_found");
      await expectError(await send(other, "GET", `/files/${id}/content`), 404, "not_found");
      await expectError(await send(other, "DELETE", `/files/${id}`), 404, "not_found");
    }
    // The other user's delete changed nothing.
    expect(await env.FILES.head(fileObjectKey(file.id))).not.toBeNull();
    const content = await send(owner, "GET", `/files/${file.id}/content`);
    expect(new Uint8Array(await content.arrayBuffer())).toEqual(bytes);
  });

  it("DELETE removes the R2 object and the row; the file is 404 afterwards", async () => {
    const user = newUser("files");
    const file = await created(await uploadRaw(user, fileOf(JPEG_HEAD), "image/jpeg"));
    expect(await env.FILES.head(fileObjectKey(file.id))).not.toBeNull();
    const res = await send(user, "DELETE", `/files/${file.id}`);
    expect(res.status).toBe(204);
    expect(await env.FILES.head(fileObjectKey(file.id))).toBeNull();
    expect(await fileRowCount(user)).toBe(0);
    await expectError(await send(user, "GET", `/files/${file.id}`), 404, "not_found");
    await expectError(await send(user, "GET", `/files/${file.id}/content`), 404, "not_found");
    await expectError(await send(user, "DELETE", `/files/${file.id}`), 404, "not_found");
  });
});
