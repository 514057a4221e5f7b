import { kib, num, section, table } from "../lib/format.mjs";
import { readHeapSnapshot } from "../lib/heap-snapshot.mjs";
import { takeHeapSnapshot } from "../lib/inspector.mjs";
import { sendEdgeTurn } from "../lib/paths.mjs";
import { rssMiB } from "../lib/proc.mjs";
import { median } from "../lib/stats.mjs";

/** Answer sizes: the concurrency scenario's 100 tokens, and a long answer. */
const SHAPES = [
  { tokens: 100, ttft: 0, itl: 0 },
  { tokens: 1000, ttft: 0, itl: 0 },
];
/** Turns running at once while the conversations are filled. */
const PARALLEL = 10;
/** Pause after the last answer, so its storage writes and timers are done before the snapshot. */
const SETTLE_MS = 2000;

/*
 * Property names that identify our classes in the snapshot of the minified bundle (class names are
 * minified, property names are not): src/generation/conversation-generation.ts, answer-generation.ts,
 * event-broadcast.ts.
 */
const CONVERSATION_GENERATION = ["metrics", "db", "log", "active", "owner"];
const ANSWER_GENERATION = ["events", "done", "accumulator", "resolveDone"];
const EVENT_BROADCAST = ["events", "pending", "followers", "heartbeat"];

const sleep = (t) => new Promise((resolve) => setTimeout(resolve, t));

/**
 * What idle conversation objects keep in memory once their answers have ended: one turn in each of
 * many conversations, then a heap snapshot of the edge-chat isolate (through workerd's V8 inspector),
 * read for our objects and what each retains (its dominated sizes).
 * @returns {Promise<{ markdown: string, metrics: Record<string, number> }>}
 */
export async function runMemory(h, { quick }) {
  if (!h.edgeInspectorUrl) throw new Error("the harness was started without the inspector");
  const perShape = quick ? 20 : 50;
  const rssBefore = rssMiB(h.workerdPid);
  const turns = { ok: 0, failed: 0 };
  const ids = [];
  for (const s of SHAPES.keys()) ids.push(await h.createConversations(`bench-memory-${s}`, perShape));
  // The sizes take turns batch by batch: workerd evicts a Durable Object left idle long enough (a
  // first full run, one size after the other, found none of the first size's objects in the snapshot).
  for (let i = 0; i < perShape; i += PARALLEL) {
    for (const [s, shape] of SHAPES.entries()) {
      const userId = `bench-memory-${s}`;
      const results = await Promise.all(
        ids[s]
          .slice(i, i + PARALLEL)
          .map((conversationId) => sendEdgeTurn(h, shape, { userId, conversationId, label: "memory" })),
      );
      for (const r of results) turns[r.ok && r.tokens === shape.tokens ? "ok" : "failed"]++;
    }
  }
  await sleep(SETTLE_MS);
  const rssAfter = rssMiB(h.workerdPid);
  const { snapshot, usedBytes } = await takeHeapSnapshot(h.edgeInspectorUrl);
  const heap = readHeapSnapshot(snapshot);

  const conversations = heap.objectsWith(CONVERSATION_GENERATION);
  const answers = heap.objectsWith(ANSWER_GENERATION);
  const broadcasts = heap.objectsWith(EVENT_BROADCAST);
  /** Per answer size (events kept): retained sizes of the conversation object, its `recent` answer, and parts. */
  const groups = new Map();
  let withRecent = 0;
  for (const cg of conversations) {
    const recent = heap.child(cg, "recent");
    const group = (key) => {
      if (!groups.has(key))
        groups.set(key, { objects: 0, conversation: [], recent: [], events: [], accumulator: [] });
      return groups.get(key);
    };
    if (recent === -1 || heap.type(recent) !== "object" || heap.name(recent) === "null") {
      const g = group("no finished answer kept");
      g.objects++;
      g.conversation.push(heap.retainedSize(cg));
      continue;
    }
    withRecent++;
    const broadcast = heap.child(recent, "events");
    const eventsArray = heap.child(broadcast, "events");
    const store = heap.child(eventsArray, "elements");
    let kept = 0;
    if (store !== -1) for (const e of heap.edgesOf(store)) if (heap.type(e.to).endsWith("string")) kept++;
    const g = group(`${kept} events kept`);
    g.objects++;
    g.conversation.push(heap.retainedSize(cg));
    g.recent.push(heap.retainedSize(recent));
    g.events.push(heap.retainedSize(eventsArray));
    g.accumulator.push(heap.retainedSize(heap.child(recent, "accumulator")));
  }
  const rows = [...groups].map(([key, g]) => [
    key,
    g.objects,
    kib(median(g.conversation)),
    g.recent.length ? kib(median(g.recent)) : "—",
    g.events.length ? kib(median(g.events)) : "—",
    g.accumulator.length ? kib(median(g.accumulator)) : "—",
  ]);
  const metrics = {
    "memory.conversations": conversations.length,
    "memory.withRecent": withRecent,
    "memory.heapUsedMiB": usedBytes / 2 ** 20,
  };
  for (const [key, g] of groups) metrics[`memory.${key}.conversationP50`] = median(g.conversation);
  const markdown = section(
    "Memory of idle conversation objects",
    `${perShape} conversations with one ${SHAPES.map((s) => `${s.tokens.toLocaleString("en")}-token`).join(" and ")} answer each (${turns.ok} turns completed, ${turns.failed} failed; ${PARALLEL} at a time, the sizes taking turns), then ${SETTLE_MS / 1000} s idle and a heap snapshot of the edge-chat isolate through workerd's V8 inspector. ` +
      "Retained = what would be freed with the object (sizes of the nodes it dominates; weak edges left out). Grouped by the events the object keeps in memory for the resume of its last answer (`ConversationGeneration.recent`).",
    table(
      [
        "kept for resume",
        "conversation objects",
        "retained per object p50",
        "of it: last answer (`recent`)",
        "of it: event texts",
        "of it: accumulator",
      ],
      rows,
    ),
    [
      `Isolate heap in use before the snapshot (its GC frees the rest): ${num(usedBytes / 2 ** 20)} MiB; snapshot total ${num(heap.totalSize / 2 ** 20)} MiB in ${heap.count.toLocaleString("en")} nodes; objects found: ${conversations.length} conversation, ${answers.length} answer, ${broadcasts.length} event broadcast.`,
      `workerd RSS ${num(rssBefore)} MiB before the turns, ${num(rssAfter)} MiB after (whole process: local D1 and Durable Object storage included).`,
    ],
  );
  return { markdown, metrics };
}
