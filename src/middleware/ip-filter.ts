/**
 * `ipFilter`: lets requests through by REMOTE_ADDR against allow and deny lists of addresses and
 * CIDR ranges, IPv4 and IPv6 (an IPv4-mapped IPv6 address counts as its IPv4 address).
 */

import ipaddr from 'ipaddr.js';
import { toApp } from '../app-forms.js';
import type { App, AppLike } from '../types.js';
import { plainText } from './plain-text.js';

export interface IpFilterOptions {
  /** Only these addresses and ranges get through (e.g. `['127.0.0.1', '10.0.0.0/8', '::1']`). Default: everyone. */
  allow?: readonly string[] | undefined;
  /** These never get through, even when allowed. */
  deny?: readonly string[] | undefined;
  /** Answers a refused request. Default: 403 Forbidden in plain text. */
  forbidden?: AppLike | undefined;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseRange(text: string, list: string): Range {
  try {
    let range: Range = text.includes('/')
      ? ipaddr.parseCIDR(text)
      : (() => {
          const addr = ipaddr.parse(text);
          return [addr, addr.kind() === 'ipv4' ? 32 : 128] as Range;
        })();
    // ::ffff:10.0.0.0/104 is the IPv4 range 10.0.0.0/8, which is how such clients are compared.
    if (range[0].kind() === 'ipv6' && (range[0] as ipaddr.IPv6).isIPv4MappedAddress() && range[1] >= 96) {
      range = [(range[0] as ipaddr.IPv6).toIPv4Address(), range[1] - 96];
    }
    return range;
  } catch {
    throw new RangeError(
      `ipFilter: ${list} entry ${JSON.stringify(text)} is not an IP address or CIDR range (e.g. '10.0.0.0/8', '::1')`,
    );
  }
}

function matches(addr: ipaddr.IPv4 | ipaddr.IPv6, ranges: Range[]): boolean {
  return ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}

/** A plain 403. */
export const forbidden: App = plainText('403 Forbidden', 'Forbidden\n');

export function ipFilter(app: AppLike, options: IpFilterOptions): App {
  const inner = toApp(app);
  if (options === null || typeof options !== 'object' || (options.allow === undefined && options.deny === undefined)) {
    throw new TypeError(
      "ipFilter(app, options): give an allow list, a deny list or both, e.g. { allow: ['127.0.0.1', '10.0.0.0/8'] }",
    );
  }
  const allow = options.allow === undefined ? undefined : options.allow.map((t) => parseRange(t, 'allow'));
  const deny = (options.deny ?? []).map((t) => parseRange(t, 'deny'));
  const refuse = options.forbidden === undefined ? forbidden : toApp(options.forbidden);
  return (environ, startResponse) => {
    const raw = environ.REMOTE_ADDR;
    let addr: ipaddr.IPv4 | ipaddr.IPv6 | undefined;
    try {
      addr = typeof raw === 'string' && raw !== '' ? ipaddr.process(raw) : undefined;
    } catch {
      addr = undefined;
    }
    // No address (a unix socket) matches no list: refused where an allow list is given.
    const ok =
      addr === undefined ? allow === undefined : (allow === undefined || matches(addr, allow)) && !matches(addr, deny);
    return ok ? inner(environ, startResponse) : refuse(environ, startResponse);
  };
}
