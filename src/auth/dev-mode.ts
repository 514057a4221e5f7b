import type { JSONWebKeySet } from "jose";
import { parseJwks } from "./jwks";

/*
 * Local development mode: `npm run dev` works offline, with tokens minted by
 * `npm run token -- <user>` against a key pair generated on the developer's machine.
 *
 * It cannot switch on in a deployed Worker by accident, for three independent reasons:
 * 1. `AUTH_DEV_JWKS` is written only to `.dev.vars`, which is gitignored and which
 *    `wrangler deploy` never uploads (it is read by `wrangler dev` alone).
 * 2. The variable is not declared in wrangler.toml, so no deploy config carries it.
 * 3. Even if it were set, it is honoured only for requests whose hostname is localhost,
 *    127.0.0.1 or [::1]; Cloudflare routes a deployed Worker only for its own hostnames,
 *    so a request to it never has one of those. Dev tokens must also name the dev
 *    issuer and audience, which no real identity provider issues.
 */

/** `iss` and `aud` every dev token must carry. */
export const DEV_ISSUER = "edge-chat-dev";
export const DEV_AUDIENCE = "edge-chat-dev";

// `URL.hostname` keeps the brackets of an IPv6 literal.
const LOCAL_HOSTNAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** True for the loopback hostnames a local `wrangler dev` is reached at. */
export function isLocalHostname(hostname: string): boolean {
  return LOCAL_HOSTNAMES.has(hostname.toLowerCase());
}

/** Decides per request whether the dev key set applies; see {@link createDevModeGate}. */
export type DevModeGate = (devJwksJson: string, requestUrl: string) => JSONWebKeySet | null;

/**
 * A gate that returns the dev key set when `AUTH_DEV_JWKS` is set and the request is for a
 * local hostname, and null otherwise. A set variable on a non-local host (or an unparsable
 * one) is reported through `log` once per gate, i.e. once per isolate for the default gate.
 */
export function createDevModeGate(log: (line: string) => void = (line) => console.error(line)): DevModeGate {
  let warnedNonLocal = false;
  let warnedInvalid = false;
  let parsed: { json: string; jwks: JSONWebKeySet | null } | undefined;
  return (devJwksJson, requestUrl) => {
    if (devJwksJson.trim() === "") return null;
    if (!isLocalHostname(new URL(requestUrl).hostname)) {
      if (!warnedNonLocal) {
        warnedNonLocal = true;
        log(
          JSON.stringify({
            level: "error",
            message: "AUTH_DEV_JWKS is set on a non-local host; ignoring it",
          }),
        );
      }
      return null;
    }
    if (parsed?.json !== devJwksJson) parsed = { json: devJwksJson, jwks: parseJwks(devJwksJson) };
    if (!parsed.jwks && !warnedInvalid) {
      warnedInvalid = true;
      log(
        JSON.stringify({ level: "error", message: "AUTH_DEV_JWKS is not a JSON Web Key Set; ignoring it" }),
      );
    }
    return parsed.jwks;
  };
}

/** The gate of this isolate. */
export const isolateDevModeGate: DevModeGate = createDevModeGate();
