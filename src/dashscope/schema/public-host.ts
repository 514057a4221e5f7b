import ipaddr from "ipaddr.js";

/**
 * Names that never lead to the public internet: `localhost` (RFC 6761), mDNS `.local`
 * (RFC 6762), `home.arpa` (RFC 8375) and `.internal` (reserved by ICANN for private use, 2024).
 */
const PRIVATE_SUFFIXES = ["localhost", "local", "home.arpa", "internal"] as const;

/**
 * Why the host of an http(s) URL is not a public one, or `null` if it is. DashScope fetches media
 * URLs from its own network, so a loopback, private, link-local (cloud metadata at
 * 169.254.169.254) or otherwise special address, or a name that only resolves inside a network,
 * would have it probe someone's internal services on our behalf. `url` must already be parsed by
 * the WHATWG URL parser, which turns every spelling of an IPv4 address (`2130706433`,
 * `0x7f000001`, `0177.0.0.1`) into dotted decimal and lower-cases names.
 *
 * Public names that resolve to private addresses (DNS rebinding) cannot be seen here without a
 * lookup; that part is the fetching side's to enforce.
 */
export function nonPublicHostProblem(url: URL): string | null {
  let host = url.hostname;
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.startsWith("[") && host.endsWith("]")) return addressProblem(host.slice(1, -1));
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return addressProblem(host);
  if (!host.includes(".")) return `must point at a public host: "${host}" is a name without a domain`;
  const suffix = PRIVATE_SUFFIXES.find((s) => host === s || host.endsWith(`.${s}`));
  if (suffix) return `must point at a public host: ".${suffix}" names are not on the public internet`;
  return null;
}

function addressProblem(address: string): string | null {
  if (!ipaddr.isValid(address)) return "must point at a public host";
  // `process` turns an IPv4-mapped IPv6 address (::ffff:127.0.0.1) into the IPv4 address it carries.
  const ip = ipaddr.process(address);
  const range = ip.range();
  // The deprecated IPv4-compatible form (::a.b.c.d) is "unicast" to ipaddr.js; nothing public lives there.
  const ipv4Compatible =
    ip.kind() === "ipv6" &&
    ip
      .toByteArray()
      .slice(0, 12)
      .every((b) => b === 0);
  if (range === "unicast" && !ipv4Compatible) return null;
  const what = ipv4Compatible ? "an IPv4-compatible IPv6" : `a ${RANGE_WORDS[range] ?? range}`;
  return `must point at a public host: ${ip.toString()} is ${what} address`;
}

const RANGE_WORDS: Partial<Record<string, string>> = {
  unspecified: "unspecified",
  loopback: "loopback",
  private: "private",
  uniqueLocal: "unique-local (private)",
  linkLocal: "link-local",
  carrierGradeNat: "carrier-grade NAT",
  multicast: "multicast",
  broadcast: "broadcast",
  reserved: "reserved",
};
