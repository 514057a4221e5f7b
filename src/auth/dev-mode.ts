import type { JSONWebKeySet } from "jose";
import { formatLog, writeLog } from "../log/log";
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
 *    127.0.0.1 or [::1], or a private-network IP literal listed in `AUTH_DEV_HOSTS` (an
 *    Android emulator reaches the host as 10.0.2.2, a phone on the LAN as e.g. 192.168.1.20).
 *    Cloudflare routes a deployed Worker only for its own hostnames, so a request to it never
 *    has one of those. Dev tokens must also name the dev issuer and audience, which no real
 *    identity provider issues.
 */

/** `iss` and `aud` every dev token must carry. */
export const DEV_ISSUER = "edge-chat-dev";
export const DEV_AUDIENCE = "edge-chat-dev";

/** What an expired dev token's 401 tells the developer to do. */
export const DEV_TOKEN_RENEWAL = "mint a new one with `npm run token -- <user-id>`";

// `URL.hostname` keeps the brackets of an IPv6 literal.
const LOCAL_HOSTNAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** True for the loopback hostnames a local `wrangler dev` is reached at. */
export function isLocalHostname(hostname: string): boolean {
  return LOCAL_HOSTNAMES.has(hostname.toLowerCase());
}

/**
 * True for an IP literal in a private or link-local range: IPv4 127/8, 10/8, 172.16/12,
 * 192.168/16, 169.254/16 (RFC 1918, RFC 3927); IPv6 fc00::/7 and fe80::/10 (RFC 4193, 4291),
 * with or without brackets. No public DNS name or address qualifies.
 */
export function isPrivateAddress(host: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    if (v4.slice(1).some((part) => Number(part) > 255)) return false;
    return (
      a === 127 ||
      a === 10 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254)
    );
  }
  const v6 = /^\[?([0-9a-f]{1,4}):[0-9a-f:.]*\]?$/i.exec(host);
  if (!v6) return false;
  const first = Number.parseInt(v6[1] ?? "", 16);
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80;
}

/**
 * The hostnames `AUTH_DEV_HOSTS` adds (comma- or space-separated), bracketed like
 * `URL.hostname` for IPv6; entries that are not private-network IP literals are left out.
 */
export function parseDevHosts(value: string): { hosts: Set<string>; ignored: string[] } {
  const hosts = new Set<string>();
  const ignored: string[] = [];
  for (const entry of value.split(/[\s,]+/).filter(Boolean)) {
    const host = entry.toLowerCase();
    if (!isPrivateAddress(host)) ignored.push(entry);
    else hosts.add(host.includes(":") && !host.startsWith("[") ? `[${host}]` : host);
  }
  return { hosts, ignored };
}

/** The 401 message for a dev token sent to a host where dev tokens are not accepted. */
export function devHostRefusal(hostname: string): string {
  const address = hostname.replace(/^\[(.*)\]$/, "$1");
  return (
    `Local development tokens are accepted on localhost only, and this request is for ${hostname}. ` +
    `To accept them at this address (an emulator or a device on your network), set AUTH_DEV_HOSTS=${address} ` +
    "in .dev.vars and restart `npm run dev`; only private-network addresses can be added."
  );
}

/** Decides per request whether the dev key set applies; see {@link createDevModeGate}. */
export type DevModeGate = (
  devJwksJson: string,
  requestUrl: string,
  devHosts?: string,
) => JSONWebKeySet | null;

/**
 * A gate that returns the dev key set when `AUTH_DEV_JWKS` is set and the request is for a
 * local hostname (or one of `devHosts`, the `AUTH_DEV_HOSTS` setting), and null otherwise.
 * A set variable on a non-local host, an unparsable one, or an `AUTH_DEV_HOSTS` entry that is
 * not a private-network address is reported through `write` once per gate, i.e. once per
 * isolate for the default gate.
 */
export function createDevModeGate(
  write: (line: string) => void = (line) => writeLog("error", line),
): DevModeGate {
  let warnedNonLocal = false;
  let warnedInvalid = false;
  let warnedHosts = false;
  let parsed: { json: string; jwks: JSONWebKeySet | null } | undefined;
  let extra: { value: string; hosts: Set<string> } | undefined;
  return (devJwksJson, requestUrl, devHosts = "") => {
    if (devJwksJson.trim() === "") return null;
    if (extra?.value !== devHosts) {
      const { hosts, ignored } = parseDevHosts(devHosts);
      extra = { value: devHosts, hosts };
      if (ignored.length > 0 && !warnedHosts) {
        warnedHosts = true;
        write(
          formatLog("error", "config.invalid", {
            message: "AUTH_DEV_HOSTS lists addresses that are not private-network IP literals; ignoring them",
            ignored,
          }),
        );
      }
    }
    const hostname = new URL(requestUrl).hostname.toLowerCase();
    if (!isLocalHostname(hostname) && !extra.hosts.has(hostname)) {
      if (!warnedNonLocal) {
        warnedNonLocal = true;
        write(
          formatLog("error", "config.dev_jwks_ignored", {
            message: "AUTH_DEV_JWKS is set on a non-local host; ignoring it",
          }),
        );
      }
      return null;
    }
    if (parsed?.json !== devJwksJson) parsed = { json: devJwksJson, jwks: parseJwks(devJwksJson) };
    if (!parsed.jwks && !warnedInvalid) {
      warnedInvalid = true;
      write(
        formatLog("error", "config.invalid", {
          message: "AUTH_DEV_JWKS is not a JSON Web Key Set; ignoring it",
        }),
      );
    }
    return parsed.jwks;
  };
}

/** The gate of this isolate. */
export const isolateDevModeGate: DevModeGate = createDevModeGate();
