import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { buildStreamLibrary } from "../lib/build.mjs";
import { num, section, table } from "../lib/format.mjs";
import { conversationPool, prompt, sendEdgeTurn, sendPassthrough } from "../lib/paths.mjs";
import { cpuTimeMs } from "../lib/proc.mjs";
import { median } from "../lib/stats.mjs";

/** Length of the recorded stream the decoder is timed on. */
const RECORDED_TOKENS = 20_000;
/** Slice sizes the body is fed in: a small TCP read, and a large one. */
const CHUNK_SIZES = [1024, 16 * 1024];
/** Timed passes over the recording per slice size (median reported). */
const DECODE_PASSES = 15;
/** Turns per CPU block and blocks per path, alternating pass-through and edge-chat. */
const CPU_TURNS_PER_BLOCK = 10;
const CPU_SHAPE = { tokens: Number(process.env.BENCH_CPU_TOKENS || 1000), ttft: 0, itl: 0 };

/** Records one long DashScope stream straight from the stand-in, as raw bytes. */
async function recordStream(h) {
  const res = await fetch(h.directUrl, {
    method: "POST",
    headers: h.standInAuth,
    body: JSON.stringify({
      model: "qwen-plus",
      messages: [{ role: "user", content: prompt({ tokens: RECORDED_TOKENS, ttft: 0, itl: 0 }) }],
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200) throw new Error(`recording the stream: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** One pass of decoder + accumulator over `bytes` in `chunkSize` slices; returns ms and the result. */
function decodeOnce(lib, bytes, chunkSize) {
  const started = performance.now();
  const decoder = new lib.DashScopeEventDecoder();
  const acc = new lib.CompletionAccumulator();
  for (let at = 0; at < bytes.length; at += chunkSize) {
    for (const event of decoder.push(bytes.subarray(at, at + chunkSize))) acc.push(event);
  }
  for (const event of decoder.end()) acc.push(event);
  const result = acc.finish();
  return { ms: performance.now() - started, result };
}

/** Workerd CPU milliseconds used by `turns` sequential calls of `send`. */
async function cpuOf(h, turns, send) {
  const before = cpuTimeMs(h.workerdPid);
  let errors = 0;
  for (let i = 0; i < turns; i++) if (!(await send()).ok) errors++;
  return { cpuMs: cpuTimeMs(h.workerdPid) - before, errors };
}

/**
 * Stream processing cost: the decoder + accumulator throughput in Node over a recorded 20,000-token
 * stream, and workerd CPU per 1,000-token turn, edge-chat vs the pass-through Worker.
 */
export async function runStreamCost(h, { root, quick }) {
  const lib = await import(
    pathToFileURL(await buildStreamLibrary(root, path.join(root, ".bench/stream-lib.mjs"))).href
  );
  const bytes = await recordStream(h);
  const decodeRows = [];
  const metrics = {};
  for (const size of CHUNK_SIZES) {
    decodeOnce(lib, bytes, size); // warm-up: JIT
    const times = [];
    let last;
    for (let i = 0; i < DECODE_PASSES; i++) {
      const pass = decodeOnce(lib, bytes, size);
      times.push(pass.ms);
      last = pass.result;
    }
    const usage = last.usage;
    if (last.status !== "completed" || usage?.completion_tokens !== RECORDED_TOKENS) {
      throw new Error(`decoder check failed: status ${last.status}, ${usage?.completion_tokens} tokens`);
    }
    const t = median(times);
    const mbps = bytes.length / 1e6 / (t / 1000);
    decodeRows.push([
      `${size / 1024} KiB`,
      num(bytes.length / 1e6, 2),
      num(t, 1),
      num(mbps, 0),
      num(RECORDED_TOKENS / (t / 1000) / 1e6, 2),
    ]);
    metrics[`decode.${size}.mbps`] = mbps;
  }

  const user = "bench-cpu";
  const pool = conversationPool(user, await h.createConversations(user, 4));
  const blocks = quick ? 2 : 4;
  const cpu = { passthrough: { cpuMs: 0, turns: 0, errors: 0 }, edge: { cpuMs: 0, turns: 0, errors: 0 } };
  const senders = {
    passthrough: () => sendPassthrough(h, CPU_SHAPE),
    edge: () => sendEdgeTurn(h, CPU_SHAPE, { ...pool(), label: "cpu" }),
  };
  await cpuOf(h, 2, senders.edge); // warm-up
  for (let b = 0; b < blocks; b++) {
    for (const name of b % 2 === 0 ? ["passthrough", "edge"] : ["edge", "passthrough"]) {
      const r = await cpuOf(h, CPU_TURNS_PER_BLOCK, senders[name]);
      cpu[name].cpuMs += r.cpuMs;
      cpu[name].turns += CPU_TURNS_PER_BLOCK;
      cpu[name].errors += r.errors;
    }
  }
  const perTurn = (k) => cpu[k].cpuMs / cpu[k].turns;
  metrics["cpu.edgePerTurn"] = perTurn("edge");
  metrics["cpu.passthroughPerTurn"] = perTurn("passthrough");
  const cpuRows = [
    [
      "pass-through Worker (no persistence)",
      cpu.passthrough.turns,
      num(perTurn("passthrough"), 2),
      num((perTurn("passthrough") * 1000) / CPU_SHAPE.tokens, 1),
      cpu.passthrough.errors,
    ],
    [
      "edge-chat turn (auth, D1, Durable Object, persistence)",
      cpu.edge.turns,
      num(perTurn("edge"), 2),
      num((perTurn("edge") * 1000) / CPU_SHAPE.tokens, 1),
      cpu.edge.errors,
    ],
    [
      "difference",
      "",
      num(perTurn("edge") - perTurn("passthrough"), 2),
      num(((perTurn("edge") - perTurn("passthrough")) * 1000) / CPU_SHAPE.tokens, 1),
      "",
    ],
  ];

  const markdown = [
    section(
      "Stream processing cost: decoder + accumulator",
      `\`DashScopeEventDecoder\` + \`CompletionAccumulator\` (src/dashscope/) bundled and run in Node ${process.version} over a recorded ${RECORDED_TOKENS.toLocaleString("en")}-token stream (with usage chunk and \`[DONE]\`), fed in fixed-size slices; median of ${DECODE_PASSES} passes. Each pass checks the result is complete with ${RECORDED_TOKENS.toLocaleString("en")} completion tokens.`,
      table(["slice", "stream MB", "pass ms", "MB/s", "M tokens/s"], decodeRows),
    ),
    section(
      "Stream processing cost: workerd CPU per turn",
      `CPU time of the workerd process (utime + stime from /proc/<pid>/stat) over blocks of ${CPU_TURNS_PER_BLOCK} sequential ${CPU_SHAPE.tokens.toLocaleString("en")}-token turns, alternating paths. ` +
        '"Without persistence" is the pass-through Worker; local D1 and Durable Object storage run inside the same workerd, so their CPU is counted in the edge-chat row.',
      table(["path", "turns", "CPU ms / turn", "CPU µs / token", "errors"], cpuRows),
    ),
  ].join("\n\n");
  return { markdown, metrics };
}
