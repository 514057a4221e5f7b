import { performance } from "node:perf_hooks";
import { ms, num, section, table } from "../lib/format.mjs";
import { connect } from "../lib/inspector.mjs";
import { rssMiB, sampleRss } from "../lib/proc.mjs";
import { summarize } from "../lib/stats.mjs";
import { jsonRequest } from "../lib/stream-client.mjs";

/** A phone photo's size: 5 MiB. */
const PHOTO_BYTES = 5 * 1024 * 1024;
/** A vision model (a text-only one refuses images). */
const MODEL = "qwen3-vl-plus";
/** The answer of every turn: 50 tokens at once, so the time is edge-chat's, not the model's. */
const ANSWER = "[[stand-in tokens=50]]";
/** How often the workerd process's RSS is read while a phase runs. */
const SAMPLE_MS = 5;
const MiB = 1024 * 1024;
/** The pause between two samples of the isolate's memory. */
const ISOLATE_SAMPLE_MS = 5;

/**
 * Samples the edge-chat isolate's memory through workerd's V8 inspector every few ms, on one session
 * for the whole scenario (a second session to the same isolate was seen to stall its requests, and
 * so was a forced garbage collection): the peaks of the JS heap in use (`usedSize`) and of the heap
 * plus ArrayBuffer backing stores (`backingStorageSize`: the bytes of uploads and R2 reads live
 * there, outside the heap), both of which count against a Worker's 128 MB. A sample is taken
 * between the isolate's tasks, so a peak inside one synchronous stretch is seen only if it
 * outlives it.
 */
async function sampleIsolate(wsUrl) {
  const session = await connect(wsUrl);
  let running = true;
  let heap = 0;
  let total = 0;
  const loop = (async () => {
    while (running) {
      const usage = await session.send("Runtime.getHeapUsage");
      heap = Math.max(heap, usage.usedSize);
      total = Math.max(total, usage.usedSize + (usage.backingStorageSize ?? 0));
      await new Promise((resolve) => setTimeout(resolve, ISOLATE_SAMPLE_MS));
    }
  })();
  return {
    /** The heap + buffers in use now, in MiB; the peaks start again from here. */
    async now() {
      const usage = await session.send("Runtime.getHeapUsage");
      heap = 0;
      total = 0;
      return (usage.usedSize + (usage.backingStorageSize ?? 0)) / MiB;
    },
    peak() {
      const result = { heapMiB: heap / MiB, totalMiB: total / MiB };
      heap = 0;
      total = 0;
      return result;
    },
    async stop() {
      running = false;
      await loop;
      session.close();
    },
  };
}

/**
 * A 5 MiB JPEG as a phone sends it: a JFIF header stating 4032×3024 px (a 12 MP camera), then
 * random bytes (incompressible, like a photo's entropy-coded data), different every time.
 */
function photo() {
  const bytes = new Uint8Array(PHOTO_BYTES);
  for (let at = 0; at < bytes.length; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  const u16 = (n) => [(n >> 8) & 0xff, n & 0xff];
  bytes.set([
    0xff,
    0xd8,
    0xff,
    0xe0,
    ...u16(16),
    0x4a,
    0x46,
    0x49,
    0x46,
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    1,
    0,
    0,
    0xff,
    0xc0,
    ...u16(17),
    8,
    ...u16(3024),
    ...u16(4032),
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
  ]);
  return bytes;
}

/**
 * Photos: the upload of a 5 MiB photo (`POST /v1/files`, raw bytes to R2), a turn that sends it
 * (a file part: read from R2, sent to the stand-in as a 7 MB base64 data URL), and a later turn
 * whose history holds it (sent again), side by side with a turn without a photo. Each phase runs
 * on its own, in this order, while the workerd process's RSS is sampled: its peak, and the rise
 * over the RSS before the phase (RSS seldom falls back between phases, so a later phase's rise is
 * what it needed beyond the earlier ones').
 * @returns {Promise<{ markdown: string, metrics: Record<string, number> }>}
 */
export async function runPhotos(h, { quick }) {
  if (!h.edgeInspectorUrl) throw new Error("the harness was started without the inspector");
  const rounds = quick ? 4 : 20;
  const userId = "bench-photos";
  const headers = await h.edgeHeaders(userId);
  const newConversation = async () => {
    const res = await jsonRequest("POST", `${h.edgeOrigin}/v1/conversations`, headers, { model: MODEL });
    if (res.status !== 201) throw new Error(`creating a conversation: HTTP ${res.status}`);
    return res.json.id;
  };
  const turn = async (conversationId, content) => {
    const res = await jsonRequest(
      "POST",
      `${h.edgeOrigin}/v1/conversations/${conversationId}/messages`,
      headers,
      {
        content,
        stream: false,
      },
    );
    if (res.status !== 200 || res.json?.assistant_message?.status !== "completed")
      throw new Error(`turn: HTTP ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
  };
  const upload = async (bytes) => {
    const res = await fetch(`${h.edgeOrigin}/v1/files?filename=IMG.jpg`, {
      method: "POST",
      headers: { authorization: headers.authorization, "content-type": "image/jpeg" },
      body: bytes,
    });
    const body = await res.json();
    if (res.status !== 201) throw new Error(`upload: HTTP ${res.status} ${JSON.stringify(body)}`);
    return body.id;
  };

  const isolate = await sampleIsolate(h.edgeInspectorUrl);
  /** Runs `fn` `rounds` times, one after the other, timing each and sampling the RSS. */
  const phase = async (label, fn) => {
    const before = rssMiB(h.workerdPid);
    const sampler = sampleRss(h.workerdPid, SAMPLE_MS);
    const times = [];
    const base = await isolate.now();
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await fn(i);
      times.push(performance.now() - t0);
    }
    const { totalMiB } = isolate.peak();
    const peak = sampler.stop();
    return { label, time: summarize(times), before, peak, isolate: { base, peak: totalMiB } };
  };

  // Warm-up: the isolate, the objects' classes, the stand-in's sockets.
  const warm = await newConversation();
  await turn(warm, `warm ${ANSWER}`);

  const textConversations = await Promise.all(Array.from({ length: rounds }, newConversation));
  const photoConversations = await Promise.all(Array.from({ length: rounds }, newConversation));
  const photos = Array.from({ length: rounds }, photo);
  const fileIds = [];

  const results = [];
  results.push(await phase("turn without a photo", (i) => turn(textConversations[i], `Hello ${ANSWER}`)));
  results.push(
    await phase("upload of a 5 MiB photo", async (i) => {
      fileIds.push(await upload(photos[i]));
    }),
  );
  results.push(
    await phase("turn with the photo", (i) =>
      turn(photoConversations[i], [
        { type: "text", text: `What is this? ${ANSWER}` },
        { type: "file", file: { file_id: fileIds[i] } },
      ]),
    ),
  );
  results.push(
    await phase("next turn (the photo in its history)", (i) =>
      turn(photoConversations[i], `And then? ${ANSWER}`),
    ),
  );

  await isolate.stop();
  const rows = results.map((r) => [
    r.label,
    ms(r.time.p50),
    ms(r.time.p95),
    num(r.isolate.peak, 1),
    `+${num(r.isolate.peak - r.isolate.base, 1)}`,
    num(r.peak, 0),
    `+${num(r.peak - r.before, 0)}`,
  ]);
  const metrics = {};
  for (const [i, r] of results.entries()) {
    metrics[`photos${i}.p50`] = r.time.p50;
    metrics[`photos${i}.peakRssMiB`] = r.peak;
    metrics[`photos${i}.isolatePeakMiB`] = r.isolate.peak;
  }
  const markdown = section(
    "Photos: a 5 MiB upload and a turn with it",
    `${rounds} rounds per row, one after another, in the order shown (warm-up discarded); \`stream: false\` turns with a 50-token answer, ` +
      `model ${MODEL}, images as base64 data URLs (no FILE_URL_BASE). Isolate: the edge-chat isolate (the Worker and its Durable Objects): ` +
      `its JS heap plus ArrayBuffer backing stores (what a Worker's 128 MB limit counts), sampled every ${ISOLATE_SAMPLE_MS} ms through V8's inspector; ` +
      "the peak during the row (garbage of earlier rounds not yet collected included) and its rise over the use when the row began. " +
      `RSS: the whole workerd process (also Miniflare's local D1, R2 and the pass-through Worker), sampled every ${SAMPLE_MS} ms; "rise" is over its RSS when the row began.`,
    table(
      [
        "operation",
        "p50 ms",
        "p95 ms",
        "isolate peak MiB",
        "isolate rise MiB",
        "process RSS MiB",
        "RSS rise MiB",
      ],
      rows,
    ),
  );
  return { markdown, metrics };
}
