// Mutual TLS between members. Every member holds one certificate from the cluster CA that names its member
// id (CN or a DNS subjectAltName) and uses it both as server and as client: the server refuses callers
// without a certificate from the CA, and each side checks that the other's certificate names the member it
// claims to be (the caller: its hello's `from`; the server: the peer id we dialed), not just "some member".
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";

export interface TlsConfig {
  /** PEM of the cluster CA: the only issuer accepted for peers. */
  readonly ca: string | Buffer;
  /** PEM certificate (chain) of this member, naming its member id. */
  readonly cert: string | Buffer;
  /** PEM private key of `cert`. */
  readonly key: string | Buffer;
}

const pem = (v: string | Buffer): Buffer => (typeof v === "string" ? Buffer.from(v) : v);

/** Credentials for the member's server: TLS requiring a client certificate from the CA, or plain TCP. */
export function serverCredentials(tls: TlsConfig | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    pem(tls.ca),
    [{ private_key: pem(tls.key), cert_chain: pem(tls.cert) }],
    true,
  );
}

/**
 * Credentials to dial `peer`: TLS with this member's certificate, trusting only the CA and accepting only a
 * server certificate that names `peer`. Without `tls`, plain TCP.
 */
export function clientCredentials(tls: TlsConfig | undefined, peer: string): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert), {
    checkServerIdentity: (_host, cert) => identityError(cert, peer),
  });
}

/**
 * Channel options that go with clientCredentials: the TLS server name is the peer id rather than the
 * address, so certificates need not list IP addresses and a renumbered member keeps its certificate.
 */
export function clientChannelOptions(tls: TlsConfig | undefined, peer: string): grpc.ChannelOptions {
  return tls ? { "grpc.ssl_target_name_override": peer } : {};
}

/** The names a certificate vouches for: its subject CN and its DNS subjectAltNames. */
export function certificateNames(cert: PeerCertificate): string[] {
  const names: string[] = [];
  const cn: unknown = cert.subject?.CN;
  if (typeof cn === "string") names.push(cn);
  else if (Array.isArray(cn)) names.push(...cn.filter((n): n is string => typeof n === "string"));
  for (const entry of (cert.subjectaltname ?? "").split(",")) {
    const trimmed = entry.trim();
    if (trimmed.startsWith("DNS:")) names.push(trimmed.slice(4));
  }
  return names;
}

/** Undefined when `cert` names `member`, else the error saying which names it carries instead. */
export function identityError(cert: PeerCertificate | undefined, member: string): Error | undefined {
  if (!cert || Object.keys(cert).length === 0) return new Error(`no certificate was presented for ${member}`);
  const names = certificateNames(cert);
  if (names.includes(member)) return undefined;
  return new Error(`the certificate names ${names.join(", ") || "nobody"}, not ${member}`);
}
