import http from "node:http";

/** Placeholder: replaced by the full stand-in. */
export async function startStandIn({ host = "127.0.0.1", port = 0, apiKey } = {}) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, auth: req.headers.authorization === `Bearer ${apiKey}` }));
  });
  await new Promise((resolve) => server.listen(port, host, resolve));
  const { port: actual } = server.address();
  const origin = `http://${host}:${actual}`;
  return { origin, baseUrl: `${origin}/compatible-mode/v1`, close: () => new Promise((r) => server.close(r)) };
}
