/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load balancer
 * may send before the first HTTP byte of a connection (SPEC §18). The parser takes the bytes
 * received so far and says whether they hold a whole header, part of one, none, or a bad one.
 */

import net from 'node:net';
import ipaddr from 'ipaddr.js';

export type ProxyMode = 'v1' | 'v2' | 'auto';

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export interface ProxyTlv {
  readonly type: number;
  readonly value: Uint8Array;
}

/** `environ['nsgi.proxy']`: what the proxy said about the client's connection. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /** `LOCAL`: the proxy's own connection (a health check); its addresses are not the client's. */
  readonly command: 'PROXY' | 'LOCAL';
  readonly family: 'TCP4' | 'TCP6' | 'UNIX' | 'UNKNOWN';
  readonly source: ProxyAddress | undefined;
  readonly destination: ProxyAddress | undefined;
  /** The v2 TLVs in order (empty for v1). */
  readonly tlvs: readonly ProxyTlv[];
}

export type ProxyParse =
  | { readonly kind: 'incomplete' }
  /** The bytes begin with no PROXY header (only in 'auto' mode). */
  | { readonly kind: 'absent' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'header'; readonly header: ProxyHeader; readonly length: number };

/** A v1 header is at most 107 bytes, CRLF included (the specification's own bound). */
export const PROXY_V1_MAX = 107;
/** The largest v2 header accepted, TLVs included; HAProxy's own TLVs fit in a few hundred bytes. */
export const PROXY_V2_MAX = 4096;
/** A v2 SSL TLV, and its client bit: the client reached the proxy over TLS. */
export const PP2_TYPE_SSL = 0x20;
const PP2_CLIENT_SSL = 0x01;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;
const INCOMPLETE: ProxyParse = { kind: 'incomplete' };
const ABSENT: ProxyParse = { kind: 'absent' };

const invalid = (reason: string): ProxyParse => ({ kind: 'invalid', reason });

/** How `buf` begins compared with `prefix`: all of it, a part that may still become it, or not. */
function startsWith(buf: Buffer, prefix: Buffer): 'yes' | 'maybe' | 'no' {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return 'no';
  return n === prefix.length ? 'yes' : 'maybe';
}

/** Reads the header at the start of `buf`, which holds every byte of the connection received so far. */
export function parseProxyHeader(buf: Buffer, mode: ProxyMode): ProxyParse {
  const v1 = mode === 'v2' ? 'no' : startsWith(buf, V1_PREFIX);
  const v2 = mode === 'v1' ? 'no' : startsWith(buf, V2_SIGNATURE);
  if (v1 === 'yes') return parseV1(buf);
  if (v2 === 'yes') return parseV2(buf);
  if (v1 === 'maybe' || v2 === 'maybe') return INCOMPLETE;
  if (mode === 'auto') return ABSENT;
  return invalid(`the connection did not begin with a PROXY protocol ${mode} header`);
}

function parseV1(buf: Buffer): ProxyParse {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end === -1) {
    if (buf.length >= PROXY_V1_MAX) return invalid(`v1 header longer than ${PROXY_V1_MAX} bytes`);
    return buf.includes(0x0a) ? invalid('v1 header line not ended by CRLF') : INCOMPLETE;
  }
  const length = end + 2;
  if (length > PROXY_V1_MAX) return invalid(`v1 header longer than ${PROXY_V1_MAX} bytes`);
  const parts = buf.toString('latin1', V1_PREFIX.length, end).split(' ');
  const family = parts[0];
  if (family === 'UNKNOWN') return header(1, 'PROXY', 'UNKNOWN', undefined, undefined, [], length);
  if (family !== 'TCP4' && family !== 'TCP6') return invalid(`v1 family must be TCP4, TCP6 or UNKNOWN`);
  if (parts.length !== 5) return invalid('v1 header must read PROXY <family> <src> <dst> <sport> <dport>');
  const [, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const isIp = family === 'TCP4' ? net.isIPv4 : net.isIPv6;
  if (!isIp(src) || !isIp(dst)) return invalid(`v1 addresses are not ${family === 'TCP4' ? 'IPv4' : 'IPv6'} addresses`);
  const sourcePort = port(sport);
  const destinationPort = port(dport);
  if (sourcePort === undefined || destinationPort === undefined) return invalid('v1 ports must be 0 to 65535');
  return header(
    1,
    'PROXY',
    family,
    { address: src, port: sourcePort },
    { address: dst, port: destinationPort },
    [],
    length,
  );
}

function port(s: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

const ADDRESS_BYTES = { INET: 12, INET6: 36, UNIX: 216 } as const;

function parseV2(buf: Buffer): ProxyParse {
  if (buf.length < V2_FIXED) return INCOMPLETE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid(`v2 version must be 2, got ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return invalid(`v2 command must be LOCAL or PROXY, got ${cmd}`);
  const famByte = buf[13]!;
  const fam = famByte >> 4;
  const transport = famByte & 0x0f;
  if (fam > 3 || transport > 2) return invalid(`v2 address family byte 0x${famByte.toString(16)} is not defined`);
  const len = buf.readUInt16BE(14);
  const length = V2_FIXED + len;
  if (length > PROXY_V2_MAX) return invalid(`v2 header of ${length} bytes is over the ${PROXY_V2_MAX}-byte limit`);
  if (buf.length < length) return INCOMPLETE;
  const command = cmd === 0 ? 'LOCAL' : 'PROXY';
  if (command === 'PROXY' && transport === 2) return invalid('v2 header is for a datagram (UDP) connection');
  const kind = fam === 1 ? 'INET' : fam === 2 ? 'INET6' : fam === 3 ? 'UNIX' : undefined;
  const addrBytes = kind === undefined ? 0 : ADDRESS_BYTES[kind];
  if (len < addrBytes) return invalid(`v2 address block of ${len} bytes is too short for its family`);
  let source: ProxyAddress | undefined;
  let destination: ProxyAddress | undefined;
  const a = V2_FIXED;
  if (kind === 'INET') {
    source = { address: ipv4(buf, a), port: buf.readUInt16BE(a + 8) };
    destination = { address: ipv4(buf, a + 4), port: buf.readUInt16BE(a + 10) };
  } else if (kind === 'INET6') {
    source = { address: ipv6(buf, a), port: buf.readUInt16BE(a + 32) };
    destination = { address: ipv6(buf, a + 16), port: buf.readUInt16BE(a + 34) };
  } else if (kind === 'UNIX') {
    source = { address: unixPath(buf, a), port: 0 };
    destination = { address: unixPath(buf, a + 108), port: 0 };
  }
  const tlvs: ProxyTlv[] = [];
  for (let i = a + addrBytes; i < length;) {
    if (length - i < 3) return invalid('v2 TLV cut short');
    const type = buf[i]!;
    const size = buf.readUInt16BE(i + 1);
    if (i + 3 + size > length) return invalid(`v2 TLV 0x${type.toString(16)} runs past the header`);
    tlvs.push({ type, value: Uint8Array.prototype.slice.call(buf, i + 3, i + 3 + size) });
    i += 3 + size;
  }
  const family = kind === 'INET' ? 'TCP4' : kind === 'INET6' ? 'TCP6' : kind === 'UNIX' ? 'UNIX' : 'UNKNOWN';
  return header(2, command, family, source, destination, tlvs, length);
}

function ipv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

function ipv6(buf: Buffer, at: number): string {
  return ipaddr.fromByteArray([...buf.subarray(at, at + 16)]).toString();
}

function unixPath(buf: Buffer, at: number): string {
  const end = buf.indexOf(0, at);
  return buf.toString('utf8', at, end === -1 || end > at + 108 ? at + 108 : end);
}

function header(
  version: 1 | 2,
  command: ProxyHeader['command'],
  family: ProxyHeader['family'],
  source: ProxyAddress | undefined,
  destination: ProxyAddress | undefined,
  tlvs: ProxyTlv[],
  length: number,
): ProxyParse {
  return { kind: 'header', header: { version, command, family, source, destination, tlvs }, length };
}

/** True when the header's SSL TLV says the client reached the proxy over TLS. */
export function clientUsedTls(h: ProxyHeader): boolean {
  for (const t of h.tlvs)
    if (t.type === PP2_TYPE_SSL && t.value.length > 0 && (t.value[0]! & PP2_CLIENT_SSL) !== 0) return true;
  return false;
}

/** True when the header names the client's TCP connection (else the connection's own addresses stand). */
export function namesClient(h: ProxyHeader): boolean {
  return h.command === 'PROXY' && (h.family === 'TCP4' || h.family === 'TCP6') && h.source !== undefined;
}
