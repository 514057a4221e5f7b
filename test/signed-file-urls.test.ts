import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, expect, inject, it } from "vitest";
import {
  BASE,
  call,
  createConversation,
  expectError,
  newTag,
  newUser,
  standInRequests,
  streamTurn,
} from "./helpers/api";
import { filePart, jpegOf, upload, VISION_MODEL } from "./helpers/images";

// FILE_URL_BASE / FILE_URL_SECRET set (vitest.config.ts, project "file-urls"): DashScope gets a
// short-lived signed URL of GET /v1/files/{id}/content instead of a data URL, and fetches the image
// itself. The stand-in fetches it through test/support/file-url-relay.mjs, which stands for the
// Worker's public origin; this test relays each such request to the Worker and back.
const RELAY = inject("fileUrlRelayOrigin");

/** Serves the relay's held requests through the Worker until stopped. */
function relayToWorker(): { stop: () => Promise<void>; paths: string[] } {
  let running = true;
  const paths: string[] = [];
  const loop = (async () => {
    while (running) {
      const next = await fetch(`${RELAY}/__relay/next`);
      if (next.status !== 200) continue;
      const { n, path } = (await next.json()) as { n: number; path: string };
      paths.push(path);
      // No Authorization header: the signature is the only credential DashScope has.
      const res = await exports.default.fetch(`http://localhost${path}`);
      await fetch(`${RELAY}/__relay/respond/${n}`, {
        method: "POST",
        headers: {
          "x-relay-status": String(res.status),
          "content-type": res.headers.get("content-type") ?? "application/octet-stream",
        },
        body: await res.arrayBuffer(),
      });
    }
  })();
  return {
    paths,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

let relay: ReturnType<typeof relayToWorker>;
beforeEach(() => {
  relay = relayToWorker();
});
afterEach(async () => {
  await relay.stop();
});

it("the model fetches the photo by a signed URL, in this turn and the next, and gets the uploaded bytes", async () => {
  const alice = newUser("alice");
  const photo = jpegOf(1280, 960, 30_000);
  const file = await upload(alice, photo);
  const conv = await createConversation(alice, { model: VISION_MODEL });

  const tag = newTag();
  const { events } = await streamTurn(alice, conv.id, {
    content: [{ type: "text", text: `What? [[stand-in tokens=2 tag=${tag}]]` }, filePart(file.id)],
  });
  expect(events.at(-1)!.event).toBe("message.completed");
  const [req] = await standInRequests(tag);
  const [image] = req!.images;
  expect(image).toMatchObject({
    kind: "url",
    media_type: "image/jpeg",
    bytes: photo.byteLength,
    sha256: file.sha256,
  });
  const url = new URL(image!.url!);
  expect(url.origin).toBe(RELAY);
  expect(url.pathname).toBe(`/v1/files/${file.id}/content`);
  const expires = Number(url.searchParams.get("expires"));
  // FILE_URL_TTL_SECONDS = 600.
  expect(expires * 1000 - Date.now()).toBeGreaterThan(590_000);
  expect(expires * 1000 - Date.now()).toBeLessThanOrEqual(600_000);
  expect(url.searchParams.get("signature")).toMatch(/^[0-9a-f]{64}$/);

  const next = newTag();
  await streamTurn(alice, conv.id, { content: `And? [[stand-in tokens=2 tag=${next}]]` });
  const [again] = await standInRequests(next);
  expect(again!.images.map((i) => [i.kind, i.sha256])).toEqual([["url", file.sha256]]);

  // The URL works without a token; altered or stripped, it does not.
  const signed = `${BASE}/files/${file.id}/content${url.search}`;
  const ok = await exports.default.fetch(signed);
  expect(ok.status).toBe(200);
  expect(new Uint8Array(await ok.arrayBuffer())).toEqual(photo);
  const forged = new URL(signed);
  forged.searchParams.set("expires", String(expires + 3600));
  await expectError(await exports.default.fetch(forged), 403, "forbidden");
  const otherFile = await upload(alice, jpegOf(10, 10));
  await expectError(
    await exports.default.fetch(`${BASE}/files/${otherFile.id}/content${url.search}`),
    403,
    "forbidden",
  );
  await expectError(await exports.default.fetch(`${BASE}/files/${file.id}/content`), 401, "unauthorized");
  // The owner's own route is unchanged.
  expect((await call(alice, "GET", `/files/${file.id}/content`)).status).toBe(200);
});

it("an expired signed URL is refused, and DashScope's failed download is the turn's error", async () => {
  const alice = newUser("alice");
  const file = await upload(alice, jpegOf(64, 64));
  const conv = await createConversation(alice, { model: VISION_MODEL });
  const tag = newTag();
  await streamTurn(alice, conv.id, {
    content: [{ type: "text", text: `x [[stand-in tokens=2 tag=${tag}]]` }, filePart(file.id)],
  });
  const [req] = await standInRequests(tag);
  const url = new URL(req!.images[0]!.url!);
  url.searchParams.set("expires", String(Math.floor(Date.now() / 1000) - 1));
  await expectError(
    await exports.default.fetch(`${BASE}/files/${file.id}/content${url.search}`),
    403,
    "forbidden",
  );

  // A file deleted after its URL was made: the Worker answers DashScope's download with 404, and
  // DashScope's 400 for the failed download is the turn's error.
  await relay.stop();
  const gone = await upload(alice, jpegOf(64, 64));
  // A conversation of its own: no image in its history for the stand-in to download first.
  const fresh = await createConversation(alice, { model: VISION_MODEL });
  const pending = call(alice, "POST", `/conversations/${fresh.id}/messages`, {
    stream: false,
    content: [{ type: "text", text: `y [[stand-in tokens=2 tag=${newTag()}]]` }, filePart(gone.id)],
  });
  let held: { n: number; path: string } | null = null;
  while (!held) {
    const next = await fetch(`${RELAY}/__relay/next`);
    if (next.status === 200) held = (await next.json()) as { n: number; path: string };
  }
  expect(held.path.startsWith(`/v1/files/${gone.id}/content?`)).toBe(true);
  expect((await call(alice, "DELETE", `/files/${gone.id}`)).status).toBe(204);
  const download = await exports.default.fetch(`http://localhost${held.path}`);
  expect(download.status).toBe(404);
  await fetch(`${RELAY}/__relay/respond/${held.n}`, {
    method: "POST",
    headers: { "x-relay-status": "404", "content-type": "application/json" },
    body: await download.arrayBuffer(),
  });
  const res = await pending;
  const error = await expectError(res, 400, "invalid_request");
  expect(error.message).toContain("Failed to download multimodal content");
});
