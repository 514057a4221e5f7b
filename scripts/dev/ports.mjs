// Finding out, before anything is started, whether a port `npm run dev` needs is taken, so the
// developer gets one line naming it instead of a listener's EADDRINUSE stack trace.
import net from "node:net";

/** Resolves with the error code when `port` cannot be listened on at `host`, else with null. */
function tryListen(port, host) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", (err) => resolve(err.code ?? "EADDRINUSE"));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/**
 * Whether `port` is free at `host`. `localhost` is checked on both loopback addresses, as a
 * server bound to either one makes the port unusable for `wrangler dev`; a machine without
 * IPv6 only skips `::1`.
 */
export async function portIsFree(port, host) {
  const hosts = host === "localhost" ? ["127.0.0.1", "::1"] : [host];
  for (const h of hosts) {
    const code = await tryListen(port, h);
    if (code === null || code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT") continue;
    return false;
  }
  return true;
}

/** A TCP port number from a setting, or null when it is not one. */
export function parsePort(value) {
  const port = Number(value);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : null;
}

/** The first free port after `port` (up to 100 further), for the message about a taken one. */
export async function nextFreePort(port, host) {
  for (let candidate = port + 1; candidate < Math.min(port + 100, 65536); candidate++) {
    if (await portIsFree(candidate, host)) return candidate;
  }
  return port + 1;
}
