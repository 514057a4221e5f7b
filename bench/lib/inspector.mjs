/**
 * A minimal Chrome DevTools Protocol client for workerd's V8 inspector (Miniflare `inspectorPort`):
 * takes a heap snapshot of one isolate. workerd serves one per Worker at `ws://HOST:PORT/core:user:<name>`
 * (listed at `http://HOST:PORT/json/list`). Node 22's global WebSocket speaks to it.
 */

/**
 * Opens a CDP session on `wsUrl`.
 * @returns {Promise<{ send(method: string, params?: object): Promise<any>, on(method: string, fn: (params: any) => void): void, close(): void }>}
 */
export async function connect(wsUrl) {
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`inspector: cannot connect to ${wsUrl}`)), {
      once: true,
    });
  });
  let nextId = 1;
  const pending = new Map();
  const listeners = new Map();
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(typeof e.data === "string" ? e.data : Buffer.from(e.data).toString("utf8"));
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p?.resolve(msg.result);
    } else listeners.get(msg.method)?.(msg.params);
  });
  return {
    send(method, params = {}) {
      const id = nextId++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
    },
    on(method, fn) {
      listeners.set(method, fn);
    },
    close() {
      ws.close();
    },
  };
}

/**
 * A full heap snapshot of the isolate behind `wsUrl` (V8 collects garbage first, as for any snapshot).
 * No `HeapProfiler.collectGarbage` before it: after that request, workerd was seen to drop its idle
 * Durable Object instances (a snapshot then held 1 of 4 just-used objects, without the state the
 * other 3 still answered with), so the snapshot would not show what idle objects hold.
 * @returns {Promise<{ snapshot: object, usedBytes: number, totalBytes: number }>} the parsed
 *   `.heapsnapshot` JSON and the heap usage at the time
 */
export async function takeHeapSnapshot(wsUrl) {
  const session = await connect(wsUrl);
  try {
    const chunks = [];
    session.on("HeapProfiler.addHeapSnapshotChunk", ({ chunk }) => chunks.push(chunk));
    await session.send("HeapProfiler.enable");
    const { usedSize, totalSize } = await session.send("Runtime.getHeapUsage");
    await session.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    return { snapshot: JSON.parse(chunks.join("")), usedBytes: usedSize, totalBytes: totalSize };
  } finally {
    session.close();
  }
}
