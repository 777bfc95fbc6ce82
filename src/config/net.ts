/**
 * Address syntax used by the config file: IPv4, netmasks, MAC addresses, host names, `ip:port`.
 * Pure functions; each returns a one-sentence reason when the value is wrong, or `undefined` when fine.
 */

const IPV4_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = new RegExp(`^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`);

/** Dotted-quad IPv4 without leading zeros (`010.0.0.1` is ambiguous: octal to some tools). */
export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

export function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

/** A netmask's prefix length, or undefined when the mask is not contiguous ones then zeros. */
export function netmaskToPrefix(mask: string): number | undefined {
  if (!isIPv4(mask)) return undefined;
  const bits = ipv4ToInt(mask);
  let prefix = 0;
  while (prefix < 32 && bits & (2 ** (31 - prefix))) prefix++;
  // Every bit after the first zero must be zero too.
  const expected = prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix);
  return bits === expected ? prefix : undefined;
}

export function ipv4Problem(text: string): string | undefined {
  return isIPv4(text) ? undefined : `"${text}" is not an IPv4 address (expected a.b.c.d)`;
}

export function netmaskProblem(text: string): string | undefined {
  if (!isIPv4(text)) return `"${text}" is not a netmask (expected a.b.c.d, e.g. 255.255.255.0)`;
  if (netmaskToPrefix(text) === undefined)
    return `"${text}" is not a netmask (its one-bits are not contiguous)`;
  return undefined;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** A unicast MAC written `aa:bb:cc:dd:ee:ff`; libvirt refuses multicast MACs for a NIC. */
export function macProblem(text: string): string | undefined {
  if (!MAC.test(text))
    return `"${text}" is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)`;
  if (Number.parseInt(text.slice(0, 2), 16) & 1)
    return `"${text}" is a multicast MAC; a NIC needs a unicast one`;
  return undefined;
}

/** Two MACs are the same address regardless of letter case. */
export function normalizeMac(mac: string): string {
  return mac.toLowerCase();
}

const HOST_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** An RFC 1123 host name (labels of letters, digits and inner dashes), not an IP address. */
export function hostnameProblem(text: string): string | undefined {
  const ok =
    text.length > 0 && text.length <= 253 && text.split(".").every((label) => HOST_LABEL.test(label));
  if (!ok) return `"${text}" is not a valid host name`;
  if (/^[0-9.]+$/.test(text)) return `"${text}" is neither a valid IPv4 address nor a host name`;
  return undefined;
}

/** `ip:port` with an IPv4 address and a port in 1..65535. */
export function ipPortProblem(text: string): string | undefined {
  const m = /^([^:]+):([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : 0;
  if (!m || !isIPv4(m[1]!) || port < 1 || port > 65535) {
    return `"${text}" is not an ip:port address (expected e.g. 192.168.255.205:6789)`;
  }
  return undefined;
}

/** A Linux network interface name (what `ip link` accepts): 1..15 chars, no '/', ':' or whitespace. */
export function ifnameProblem(text: string): string | undefined {
  if (text.length === 0 || text.length > 15 || /[/:\s]/.test(text) || text === "." || text === "..") {
    return `"${text}" is not a valid bridge name (1 to 15 characters, no '/', ':' or spaces)`;
  }
  return undefined;
}
