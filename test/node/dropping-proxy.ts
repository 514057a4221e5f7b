import { connect, createServer, type Socket } from "node:net";

/**
 * A TCP proxy in front of a running Worker that can cut every open connection at once, as a
 * phone losing its network does: the client's read fails mid-body, and the Worker sees the
 * disconnect. New connections after a cut go through as usual.
 */
export interface DroppingProxy {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** Destroys every connection open now (both sides); returns how many there were. */
  dropAll(): number;
  close(): Promise<void>;
}

export async function startDroppingProxy(target: string): Promise<DroppingProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    open.add(client);
    const forget = () => {
      open.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", forget).on("close", forget);
    upstream.on("error", forget).on("close", forget);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    origin: `http://127.0.0.1:${address.port}`,
    dropAll() {
      const n = open.size;
      for (const socket of [...open]) socket.destroy();
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
