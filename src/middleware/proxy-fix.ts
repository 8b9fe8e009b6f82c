/**
 * `proxyFix`: behind reverse proxies, takes the client's address, scheme, host and mount prefix from
 * X-Forwarded-For / -Proto / -Host / -Prefix (or RFC 7239 `Forwarded`) — only as far as the hops are
 * trusted proxies — and rewrites REMOTE_ADDR, `wsgi.url_scheme`, HTTP_HOST and SCRIPT_NAME. What the
 * server saw is kept under `environ['nsgi.proxy_original']`.
 */

import { toApp } from '../app-forms.js';
import { compileTrust, mappedAddress, type EnvironOptions } from '../environ.js';
import { percentDecodeNative } from '../native.js';
import type { App, AppLike } from '../types.js';

export interface ProxyFixOptions {
  /**
   * Which peers are proxies: addresses/CIDR ranges or `'loopback'`, `'linklocal'`, `'uniquelocal'`,
   * a hop count, or `(addr, hop) => boolean` — the forms Express's `trust proxy` takes. Required:
   * trusting everyone lets any client claim any address.
   */
  trust: Exclude<EnvironOptions['trustProxy'], undefined | false>;
  /** Read RFC 7239 `Forwarded` instead of the X-Forwarded-* headers. Default false. */
  forwarded?: boolean | undefined;
  /** Which X-Forwarded-* headers to apply. Default: all four. */
  use?: { for?: boolean; proto?: boolean; host?: boolean; prefix?: boolean } | undefined;
}

/** What the server put in the environ, before the rewrite. */
export interface ProxyOriginal {
  REMOTE_ADDR: string | undefined;
  'wsgi.url_scheme': string;
  HTTP_HOST: string | undefined;
  SCRIPT_NAME: string;
}

const list = (v: unknown): string[] => (typeof v === 'string' && v !== '' ? v.split(',').map((s) => s.trim()) : []);

/** The `Forwarded` elements, each as its lower-cased parameters (RFC 7239 §4), quoted values unquoted. */
function parseForwarded(value: string): Array<Record<string, string>> {
  const elements: Array<Record<string, string>> = [];
  let current: Record<string, string> = {};
  const re = /\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*([;,]|$)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
    const raw = m[2]!;
    current[m[1]!.toLowerCase()] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    if (m[3] !== ';') {
      elements.push(current);
      current = {};
    }
    if (m[3] === '') break;
  }
  return elements;
}

/** A `for=` node as an address: `"[2001:db8::1]:4711"` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`; obfuscated or unknown → undefined. */
function nodeAddress(node: string | undefined): string | undefined {
  if (node === undefined) return undefined;
  if (node.startsWith('[')) return node.slice(1, node.indexOf(']'));
  if (/^\d+\.\d+\.\d+\.\d+(:\d+)?$/.test(node)) return node.split(':')[0];
  return undefined;
}

export function proxyFix(app: AppLike, options: ProxyFixOptions): App {
  const inner = toApp(app);
  if (options === undefined || options.trust === undefined || (options.trust as unknown) === false) {
    throw new TypeError(
      "proxyFix: give trust: the proxies' addresses (e.g. 'loopback' or ['10.0.0.1']), or a hop count",
    );
  }
  const trust = compileTrust(options.trust)!;
  const use = { for: true, proto: true, host: true, prefix: true, ...options.use };
  return (environ, startResponse) => {
    const peer = environ.REMOTE_ADDR;
    if (typeof peer !== 'string' || !trust(peer, 0)) return inner(environ, startResponse);
    // One entry per hop, nearest proxy last, as each proxy appends what it saw.
    let fors: Array<string | undefined>, protos: string[], hosts: string[], prefixes: string[];
    if (options.forwarded) {
      const elements = parseForwarded(String(environ.HTTP_FORWARDED ?? ''));
      fors = elements.map((e) => nodeAddress(e.for));
      protos = elements.map((e) => e.proto ?? '');
      hosts = elements.map((e) => e.host ?? '');
      prefixes = [];
    } else {
      fors = list(environ.HTTP_X_FORWARDED_FOR);
      protos = list(environ.HTTP_X_FORWARDED_PROTO);
      hosts = list(environ.HTTP_X_FORWARDED_HOST);
      prefixes = list(environ.HTTP_X_FORWARDED_PREFIX);
    }
    // Walk back from the server: each trusted proxy vouches for the hop before it.
    let hops = 0;
    let client: string = peer;
    for (let i = fors.length - 1; i >= 0; i--) {
      const addr = fors[i];
      if (addr === undefined) break;
      client = mappedAddress(addr);
      hops++;
      if (!trust(addr, hops)) break;
    }
    if (hops === 0) return inner(environ, startResponse);
    // The entry written by the outermost trusted proxy: `hops` from the end.
    const pick = (values: string[]) => (values.length >= hops ? values[values.length - hops] : undefined);
    environ['nsgi.proxy_original'] = {
      REMOTE_ADDR: environ.REMOTE_ADDR,
      'wsgi.url_scheme': environ['wsgi.url_scheme'],
      HTTP_HOST: environ.HTTP_HOST,
      SCRIPT_NAME: environ.SCRIPT_NAME,
    } satisfies ProxyOriginal;
    if (use.for) {
      environ.REMOTE_ADDR = client;
      delete environ.REMOTE_PORT;
    }
    const proto = use.proto ? pick(protos)?.toLowerCase() : undefined;
    if (proto === 'http' || proto === 'https') environ['wsgi.url_scheme'] = proto;
    const host = use.host ? pick(hosts) : undefined;
    if (host !== undefined && host !== '' && /^[A-Za-z0-9.\-_~%!$&'()*+;=:[\]]+$/.test(host)) environ.HTTP_HOST = host;
    const prefix = use.prefix ? pick(prefixes) : undefined;
    if (prefix !== undefined && prefix.startsWith('/'))
      environ.SCRIPT_NAME = percentDecodeNative(prefix.replace(/\/+$/, '')) + environ.SCRIPT_NAME;
    return inner(environ, startResponse);
  };
}
