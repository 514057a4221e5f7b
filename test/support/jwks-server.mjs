// A stand-in identity provider for the test run: serves a JSON Web Key Set over HTTP and
// counts fetches per path, so parallel test files (each using its own path) never see
// each other's traffic. Node side only (started by test/global-setup.ts).
import { createServer } from "node:http";
import { exportJWK, generateKeyPair } from "jose";

/** Cache-Control the stand-in sends, like a real IdP; the Worker applies its own TTL anyway. */
const JWKS_MAX_AGE_SECONDS = 300;

/** Generates an extractable key pair and returns its private and public JWKs, both tagged with `kid` and `alg`. */
async function keyPair(alg, kid) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const meta = { kid, alg, use: "sig" };
  return {
    privateJwk: { ...(await exportJWK(privateKey)), ...meta },
    publicJwk: { ...(await exportJWK(publicKey)), ...meta },
  };
}

/**
 * Starts the JWKS stand-in.
 *
 * - `GET /jwks/<anything>.json`: the key set (the two base keys plus keys rotated in for that path).
 * - `GET /__jwks/stats?path=/jwks/x.json`: `{ fetches }` for that path.
 * - `POST /__jwks/rotate?path=/jwks/x.json`: publishes a new ES256 key at that path only; returns `{ privateJwk }`.
 * - `POST /__jwks/fail?path=/jwks/x.json&on=1|0`: makes that path answer 503 (or stop doing so).
 */
export async function startJwksServer({ host = "127.0.0.1", port = 0 } = {}) {
  const rs256 = await keyPair("RS256", "test-rs256-1");
  const es256 = await keyPair("ES256", "test-es256-1");
  /** @type {Map<string, { fetches: number, extra: object[], failing: boolean }>} */
  const paths = new Map();
  let rotations = 0;
  const stateOf = (path) => {
    let state = paths.get(path);
    if (!state) {
      state = { fetches: 0, extra: [], failing: false };
      paths.set(path, state);
    }
    return state;
  };
  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://stand-in");
      const target = url.searchParams.get("path") ?? "";
      if (req.method === "GET" && /^\/jwks\/[^/]+\.json$/.test(url.pathname)) {
        const state = stateOf(url.pathname);
        state.fetches += 1;
        if (state.failing) return json(res, 503, { error: "unavailable" });
        return json(
          res,
          200,
          { keys: [rs256.publicJwk, es256.publicJwk, ...state.extra] },
          { "cache-control": `public, max-age=${JWKS_MAX_AGE_SECONDS}` },
        );
      }
      if (req.method === "GET" && url.pathname === "/__jwks/stats") {
        return json(res, 200, { fetches: paths.get(target)?.fetches ?? 0 });
      }
      if (req.method === "POST" && url.pathname === "/__jwks/rotate") {
        rotations += 1;
        const next = await keyPair("ES256", `test-rotated-${rotations}`);
        stateOf(target).extra.push(next.publicJwk);
        return json(res, 200, { privateJwk: next.privateJwk });
      }
      if (req.method === "POST" && url.pathname === "/__jwks/fail") {
        stateOf(target).failing = url.searchParams.get("on") !== "0";
        return json(res, 200, { failing: stateOf(target).failing });
      }
      json(res, 404, { error: "not found" });
    } catch (err) {
      json(res, 500, { error: String(err) });
    }
  });

  await new Promise((resolve) => server.listen(port, host, resolve));
  const address = server.address();
  const origin = `http://${host}:${address.port}`;
  return {
    origin,
    rs256PrivateJwk: rs256.privateJwk,
    es256PrivateJwk: es256.privateJwk,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
