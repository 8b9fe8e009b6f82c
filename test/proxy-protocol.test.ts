/**
 * PROXY protocol v1/v2 (SPEC §18): the parser, cross-checked against headers built and read by
 * proxy-protocol-js, and the bundled server's use of it over real sockets.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pp from 'proxy-protocol-js';
import { serve, type NsgiServer } from '../src/server/index.js';
import { parseProxyHeader, PROXY_V2_MAX, type ProxyHeader } from '../src/server/proxy-protocol.js';
import type { App, Environ } from '../src/index.js';
import { connect, rawRequest, readUntil, sleep } from './helpers/raw-http.js';

const v1 = (text: string) => Buffer.from(text, 'latin1');

function v2(
  command: 'LOCAL' | 'PROXY',
  address: InstanceType<
    typeof pp.IPv4ProxyAddress | typeof pp.IPv6ProxyAddress | typeof pp.UnixProxyAddress | typeof pp.UnspecProxyAddress
  >,
  tlvs: Uint8Array = new Uint8Array(0),
): Buffer {
  const cmd = command === 'LOCAL' ? pp.Command.LOCAL : pp.Command.PROXY;
  const buf = Buffer.from(new pp.V2ProxyProtocol(cmd, pp.TransportProtocol.STREAM, address, tlvs).build());
  // The package appends `data` after the address block without counting it; TLVs count in the length.
  buf.writeUInt16BE(buf.readUInt16BE(14) + tlvs.length, 14);
  return buf;
}

const ipv4Address = (src: number[], sport: number, dst: number[], dport: number) =>
  new pp.IPv4ProxyAddress(pp.IPv4Address.createFrom(src), sport, pp.IPv4Address.createFrom(dst), dport);

function tlv(type: number, value: number[]): number[] {
  return [type, value.length >> 8, value.length & 0xff, ...value];
}

function parsed(buf: Buffer, mode: 'v1' | 'v2' | 'auto' = 'auto'): { header: ProxyHeader; length: number } {
  const r = parseProxyHeader(buf, mode);
  assert.equal(r.kind, 'header', JSON.stringify(r));
  return r;
}

function reason(buf: Buffer, mode: 'v1' | 'v2' | 'auto' = 'auto'): string {
  const r = parseProxyHeader(buf, mode);
  assert.equal(r.kind, 'invalid', JSON.stringify(r));
  return (r as { reason: string }).reason;
}

describe('parseProxyHeader: v1', () => {
  it('reads TCP4 as proxy-protocol-js builds it, with what follows left alone', () => {
    const built = new pp.V1ProxyProtocol(
      pp.INETProtocol.TCP4,
      new pp.Peer('192.0.2.10', 51234),
      new pp.Peer('198.51.100.1', 443),
    ).build();
    const buf = Buffer.concat([v1(built), v1('GET / HTTP/1.1\r\n')]);
    const { header, length } = parsed(buf, 'v1');
    assert.equal(length, built.length);
    const theirs = pp.V1ProxyProtocol.parse(built);
    assert.deepEqual(header, {
      version: 1,
      command: 'PROXY',
      family: 'TCP4',
      source: { address: theirs.source.ipAddress, port: theirs.source.port },
      destination: { address: theirs.destination.ipAddress, port: theirs.destination.port },
      tlvs: [],
    });
  });

  it('reads TCP6 and UNKNOWN', () => {
    const six = parsed(v1('PROXY TCP6 2001:db8::1 ::1 65535 0\r\n')).header;
    assert.deepEqual(
      [six.family, six.source, six.destination],
      ['TCP6', { address: '2001:db8::1', port: 65535 }, { address: '::1', port: 0 }],
    );
    const unknown = parsed(v1('PROXY UNKNOWN whatever follows\r\n')).header;
    assert.deepEqual([unknown.family, unknown.source, unknown.destination], ['UNKNOWN', undefined, undefined]);
  });

  it('says incomplete for every proper prefix of a header, in every mode that takes v1', () => {
    const whole = v1('PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n');
    for (const mode of ['v1', 'auto'] as const) {
      for (let n = 0; n < whole.length; n++)
        assert.equal(parseProxyHeader(whole.subarray(0, n), mode).kind, 'incomplete', `${mode} ${n}`);
      assert.equal(parsed(whole, mode).length, whole.length);
    }
  });

  it('refuses malformed lines with a reason', () => {
    assert.match(reason(v1('PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n')), /family/);
    assert.match(reason(v1('PROXY TCP4 1.2.3.4 ::1 1 2\r\n')), /IPv4/);
    assert.match(reason(v1('PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n')), /ports/);
    assert.match(reason(v1('PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n')), /ports/);
    assert.match(reason(v1('PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n')), /must read/);
    assert.match(reason(v1('PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n')), /CRLF/);
    assert.match(reason(v1(`PROXY UNKNOWN ${'x'.repeat(120)}`)), /longer than 107/);
  });

  it('is refused where only v2 is expected, and plain HTTP is absent in auto mode', () => {
    assert.match(reason(v1('PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n'), 'v2'), /v2 header/);
    assert.equal(parseProxyHeader(v1('GET / HTTP/1.1\r\n'), 'auto').kind, 'absent');
    assert.equal(parseProxyHeader(v1('PRO'), 'auto').kind, 'incomplete');
    assert.match(reason(v1('GET / HTTP/1.1\r\n'), 'v1'), /did not begin with a PROXY protocol v1 header/);
  });
});

describe('parseProxyHeader: v2', () => {
  it('reads an IPv4 PROXY header with TLVs as proxy-protocol-js builds it', () => {
    const tlvs = [...tlv(0x02, [...Buffer.from('example.com')]), ...tlv(0x20, [0x01, 0, 0, 0, 0])];
    const buf = v2('PROXY', ipv4Address([203, 0, 113, 7], 40000, [10, 0, 0, 5], 8080), new Uint8Array(tlvs));
    const { header, length } = parsed(Buffer.concat([buf, v1('GET')]), 'v2');
    assert.equal(length, buf.length);
    const theirs = pp.V2ProxyProtocol.parse(new Uint8Array(buf));
    const addr = theirs.proxyAddress as InstanceType<typeof pp.IPv4ProxyAddress>;
    assert.equal(header.source?.address, addr.sourceAddress.address.join('.'));
    assert.equal(header.source?.port, addr.sourcePort);
    assert.equal(header.destination?.address, addr.destinationAddress.address.join('.'));
    assert.equal(header.destination?.port, addr.destinationPort);
    assert.deepEqual(
      Buffer.concat(
        header.tlvs.map((t) => Buffer.from([t.type, t.value.length >> 8, t.value.length & 0xff, ...t.value])),
      ),
      Buffer.from(theirs.data!),
    );
    assert.deepEqual(
      header.tlvs.map((t) => [t.type, Buffer.from(t.value).toString('latin1')]),
      [
        [0x02, 'example.com'],
        [0x20, '\x01\0\0\0\0'],
      ],
    );
    assert.equal(header.family, 'TCP4');
    assert.equal(header.command, 'PROXY');
  });

  it('reads IPv6 (in its short form), UNIX and LOCAL headers', () => {
    const six = parsed(
      v2(
        'PROXY',
        new pp.IPv6ProxyAddress(
          pp.IPv6Address.createFrom([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
          1234,
          pp.IPv6Address.createFrom([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
          80,
        ),
      ),
    ).header;
    assert.deepEqual(
      [six.family, six.source, six.destination],
      ['TCP6', { address: '2001:db8::1', port: 1234 }, { address: '::1', port: 80 }],
    );
    const path = (p: string) =>
      pp.UnixAddress.createFrom([...Buffer.from(p), ...new Array<number>(108 - p.length).fill(0)]);
    const unix = parsed(v2('PROXY', new pp.UnixProxyAddress(path('/run/client.sock'), path('/run/nsgi.sock')))).header;
    assert.deepEqual(
      [unix.family, unix.source?.address, unix.destination?.address],
      ['UNIX', '/run/client.sock', '/run/nsgi.sock'],
    );
    const local = parsed(v2('LOCAL', new pp.UnspecProxyAddress())).header;
    assert.deepEqual([local.command, local.family, local.source, local.tlvs], ['LOCAL', 'UNKNOWN', undefined, []]);
  });

  it('says incomplete for every proper prefix, and refuses a v2 header where only v1 is expected', () => {
    const whole = v2('PROXY', ipv4Address([1, 2, 3, 4], 1, [5, 6, 7, 8], 2), new Uint8Array(tlv(0x04, [1, 2, 3])));
    for (let n = 0; n < whole.length; n++)
      assert.equal(parseProxyHeader(whole.subarray(0, n), 'v2').kind, 'incomplete', String(n));
    assert.match(reason(whole, 'v1'), /v1 header/);
  });

  it('refuses bad versions, commands, families, lengths and TLVs', () => {
    const good = v2('PROXY', ipv4Address([1, 2, 3, 4], 1, [5, 6, 7, 8], 2));
    const patched = (at: number, byte: number) => {
      const b = Buffer.from(good);
      b[at] = byte;
      return b;
    };
    assert.match(reason(patched(12, 0x11)), /version must be 2/);
    assert.match(reason(patched(12, 0x22)), /command/);
    assert.match(reason(patched(13, 0x41)), /family byte/);
    assert.match(reason(patched(13, 0x12)), /datagram/);
    const short = Buffer.from(good);
    short.writeUInt16BE(8, 14);
    assert.match(reason(short.subarray(0, 24)), /too short/);
    const overrun = v2('PROXY', ipv4Address([1, 2, 3, 4], 1, [5, 6, 7, 8], 2), new Uint8Array([0x04, 0, 9, 1]));
    assert.match(reason(overrun), /runs past/);
    const cut = v2('PROXY', ipv4Address([1, 2, 3, 4], 1, [5, 6, 7, 8], 2), new Uint8Array([0x04, 0]));
    assert.match(reason(cut), /cut short/);
    // Over the limit: refused from the fixed part alone, without waiting for the rest.
    const big = Buffer.from(good.subarray(0, 16));
    big.writeUInt16BE(PROXY_V2_MAX, 14);
    assert.match(reason(big), /over the 4096-byte limit/);
  });
});

describe('the bundled server with proxyProtocol', () => {
  const logs: string[] = [];
  let calls = 0;
  const app: App = (environ: Environ, startResponse) => {
    calls++;
    const p = environ['nsgi.proxy'] as ProxyHeader | undefined;
    const body = JSON.stringify({
      remote: `${String(environ.REMOTE_ADDR)}:${String(environ.REMOTE_PORT)}`,
      port: environ.SERVER_PORT,
      name: environ.SERVER_NAME,
      scheme: environ['wsgi.url_scheme'],
      proxy: p === undefined ? null : { version: p.version, command: p.command, family: p.family, tlvs: p.tlvs.length },
    });
    startResponse('200 OK', [['Content-Type', 'application/json']]);
    return [Buffer.from(body)];
  };
  const servers: NsgiServer[] = [];
  const start = async (options: Parameters<typeof serve>[1]) => {
    const s = await serve(app, { port: 0, errorLog: { write: (line: string) => void logs.push(line) }, ...options });
    servers.push(s);
    return (s.address() as net.AddressInfo).port;
  };
  let v1Port = 0;
  let v2Port = 0;
  let autoPort = 0;
  let elsewherePort = 0;
  before(async () => {
    v1Port = await start({ proxyProtocol: 'v1' });
    v2Port = await start({ proxyProtocol: 'v2', headerTimeout: 300 });
    autoPort = await start({ proxyProtocol: 'auto' });
    elsewherePort = await start({ proxyProtocol: 'v2', proxyAllowFrom: ['10.0.0.0/8', '192.168.0.0/16'] });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close(0)));
  });

  const json = (r: Awaited<ReturnType<typeof rawRequest>>) =>
    JSON.parse(r.responses[0]!.body.toString()) as Record<string, unknown>;
  const GET = 'GET / HTTP/1.1\r\nHost: app.example\r\n\r\n';

  it('v1: REMOTE_ADDR, REMOTE_PORT, SERVER_NAME and SERVER_PORT come from the header, on every request of the connection', async () => {
    const r = await rawRequest(v1Port, [v1('PROXY TCP4 203.0.113.9 10.0.0.1 50000 8443\r\n'), GET + GET], {
      methods: ['GET', 'GET'],
    });
    assert.equal(r.responses.length, 2);
    for (const res of r.responses) {
      assert.deepEqual(JSON.parse(res.body.toString()), {
        remote: '203.0.113.9:50000',
        port: '8443',
        name: '10.0.0.1',
        scheme: 'http',
        proxy: { version: 1, command: 'PROXY', family: 'TCP4', tlvs: 0 },
      });
    }
  });

  it('v2 trickled byte by byte, with an SSL TLV: the client address, and https', async () => {
    const header = v2(
      'PROXY',
      ipv4Address([198, 51, 100, 20], 61000, [10, 1, 2, 3], 443),
      new Uint8Array(tlv(0x20, [0x01, 0, 0, 0, 0])),
    );
    const bytes = [...Buffer.concat([header, v1(GET)])].map((b) => Buffer.from([b]));
    const r = await rawRequest(v2Port, bytes);
    assert.deepEqual(json(r), {
      remote: '198.51.100.20:61000',
      port: '443',
      name: '10.1.2.3',
      scheme: 'https',
      proxy: { version: 2, command: 'PROXY', family: 'TCP4', tlvs: 1 },
    });
  });

  it("v2 LOCAL (a health check) keeps the connection's own addresses", async () => {
    const r = await rawRequest(v2Port, [v2('LOCAL', new pp.UnspecProxyAddress()), GET]);
    const body = json(r);
    assert.match(String(body.remote), /^127\.0\.0\.1:\d+$/);
    assert.equal(body.port, String(v2Port));
    assert.deepEqual(body.proxy, { version: 2, command: 'LOCAL', family: 'UNKNOWN', tlvs: 0 });
  });

  it('auto: a header or none', async () => {
    const plain = json(await rawRequest(autoPort, GET));
    assert.match(String(plain.remote), /^127\.0\.0\.1:/);
    assert.equal(plain.proxy, null);
    const v1r = json(await rawRequest(autoPort, [v1('PROXY TCP6 2001:db8::7 ::1 1000 80\r\n'), GET]));
    assert.equal(v1r.remote, '2001:db8::7:1000');
    const v2r = json(
      await rawRequest(autoPort, [v2('PROXY', ipv4Address([192, 0, 2, 1], 7, [192, 0, 2, 2], 80)), GET]),
    );
    assert.equal(v2r.remote, '192.0.2.1:7');
  });

  /** Sends `data`, expects the connection closed with nothing answered, the app not run, and one log line. */
  async function refused(port: number, data: Buffer | Buffer[], logged: RegExp): Promise<void> {
    const before = calls;
    const from = logs.length;
    const r = await rawRequest(port, data, { waitForClose: true, timeout: 3000 });
    assert.equal(r.closed, true);
    assert.equal(r.text, '', 'nothing is answered');
    assert.equal(calls, before, 'the app did not run');
    await sleep(20);
    const lines = logs.slice(from);
    assert.equal(lines.length, 1, lines.join(''));
    assert.match(lines[0]!, /^nsgi: PROXY protocol: connection from 127\.0\.0\.1:\d+ closed: /);
    assert.match(lines[0]!, logged);
  }

  it('a malformed header, or the wrong version, closes the connection and is logged', async () => {
    await refused(v1Port, v1(`PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n${GET}`), /ports must be 0 to 65535/);
    await refused(
      v1Port,
      Buffer.concat([v2('PROXY', ipv4Address([1, 2, 3, 4], 1, [5, 6, 7, 8], 2)), v1(GET)]),
      /v1 header/,
    );
    await refused(v2Port, v1(`PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n${GET}`), /v2 header/);
  });

  it('a required header that is missing closes the connection: plain HTTP from the proxy is not served', async () => {
    await refused(v2Port, v1(GET), /did not begin with a PROXY protocol v2 header/);
  });

  it('a header over the size limit is refused at once', async () => {
    const big = Buffer.from(v2('PROXY', ipv4Address([1, 2, 3, 4], 1, [5, 6, 7, 8], 2)).subarray(0, 16));
    big.writeUInt16BE(8000, 14);
    const t0 = Date.now();
    await refused(v2Port, big, /over the 4096-byte limit/);
    assert.ok(Date.now() - t0 < 250, 'not left to the header timeout');
  });

  it('a header not complete within headerTimeout closes the connection and is logged', async () => {
    const header = v2('PROXY', ipv4Address([1, 2, 3, 4], 1, [5, 6, 7, 8], 2));
    await refused(v2Port, header.subarray(0, 20), /no complete PROXY header within 300 ms/);
  });

  it('a header from an address not in proxyAllowFrom is refused; plain HTTP from there is served as a direct client', async () => {
    await refused(
      elsewherePort,
      Buffer.concat([v2('PROXY', ipv4Address([6, 6, 6, 6], 1, [5, 6, 7, 8], 2)), v1(GET)]),
      /from an address not in proxyAllowFrom/,
    );
    await refused(elsewherePort, v1(`PROXY TCP4 6.6.6.6 5.6.7.8 1 2\r\n${GET}`), /not in proxyAllowFrom/);
    const direct = json(await rawRequest(elsewherePort, GET));
    assert.match(String(direct.remote), /^127\.0\.0\.1:/);
    assert.equal(direct.proxy, null);
  });

  it('a header split across reads, with the request in the same read as its end', async () => {
    const header = v1('PROXY TCP4 203.0.113.1 10.0.0.1 1111 80\r\n');
    const sock = await connect(v1Port);
    try {
      sock.write(header.subarray(0, 9));
      await sleep(30);
      sock.write(Buffer.concat([header.subarray(9), v1(GET)]));
      const text = await readUntil(sock, (t) => t.includes('}'));
      assert.match(text, /"remote":"203\.0\.113\.1:1111"/);
    } finally {
      sock.destroy();
    }
  });
});

describe('proxyProtocol options', () => {
  const app: App = (_e, sr) => {
    sr('204 No Content', []);
    return [];
  };
  it('refuses what it cannot honour, naming the fix', async () => {
    await assert.rejects(
      serve(app, { port: 0, proxyProtocol: 'v3' as 'v1' }),
      /proxyProtocol must be 'off', 'v1', 'v2' or 'auto', got "v3"/,
    );
    await assert.rejects(serve(app, { port: 0, proxyAllowFrom: '10.0.0.0/8' }), /proxyAllowFrom needs proxyProtocol/);
    await assert.rejects(
      serve(app, { port: 0, proxyProtocol: 'v1', proxyAllowFrom: 10 as unknown as string }),
      /proxyAllowFrom takes addresses and CIDR ranges \(a string or an array\), got number/,
    );
    await assert.rejects(
      serve(app, { port: 0, proxyProtocol: 'v2', proxyAllowFrom: 'not-an-address' }),
      /proxyAllowFrom: .*CIDR ranges/,
    );
    await assert.rejects(
      serve(app, { port: 0, proxyProtocol: 'v2', key: 'k', cert: 'c' }),
      /plain TCP only: terminate TLS at the proxy/,
    );
  });
});
