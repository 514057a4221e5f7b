/** Private JWK as produced by `jose.exportJWK`, tagged with `kid`, `alg` and `use`. */
export type PrivateJwk = Record<string, unknown> & { kid: string; alg: string };

/** A running JWKS stand-in (see jwks-server.mjs for its routes). */
export interface JwksServer {
  origin: string;
  rs256PrivateJwk: PrivateJwk;
  es256PrivateJwk: PrivateJwk;
  close(): Promise<void>;
}

/** Starts the JWKS stand-in on `host:port` (port 0 picks a free one). */
export function startJwksServer(options?: { host?: string; port?: number }): Promise<JwksServer>;
