/**
 * The gateway core alone: nanoseconds per request for `Gateway.handle()` with a sink that discards
 * everything, for the hello-world app. A quick check while changing the core; the whole-server
 * numbers come from `npm run bench` and `npm run bench:instructions`.
 *
 *   npm run bench:core -- [--requests 1000000] [--rounds 5]
 */

import { parseArgs } from 'node:util';
import type { RequestAbort as RequestAbortType } from '../src/abort.js';
import type { Gateway as GatewayType, ResponseSink } from '../src/gateway.js';
import type { BodySource } from '../src/input.js';
import type { App } from '../src/types.js';
import { buildServers, root } from './build.js';

// Measured on the compiled JavaScript in bench/.build, as users run it, not on loader output.
buildServers();
const { RequestAbort } = (await import(`${root}bench/.build/src/abort.js`)) as {
  RequestAbort: typeof RequestAbortType;
};
const { Gateway } = (await import(`${root}bench/.build/src/gateway.js`)) as { Gateway: typeof GatewayType };
const { EMPTY_SOURCE } = (await import(`${root}bench/.build/src/input.js`)) as { EMPTY_SOURCE: BodySource };
const { app } = (await import(`${root}bench/.build/bench/servers/app.js`)) as { app: App };

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' } },
});
const n = Number(values.requests);

const gateway = new Gateway(app);
const sink: ResponseSink = {
  head() {},
  write: () => true,
  drain: () => Promise.resolve(),
  end() {},
  abortResponse() {},
};
const rawHeaders = ['Host', '127.0.0.1:8080', 'Connection', 'keep-alive'];

function once(): void {
  void gateway.handle(
    {
      method: 'GET',
      target: '/hello',
      httpVersion: '1.1',
      rawHeaders,
      remoteAddress: '127.0.0.1',
      remotePort: 50000,
      localAddress: '127.0.0.1',
      localPort: 8080,
      tls: false,
      body: EMPTY_SOURCE,
      abort: new RequestAbort(),
    },
    sink,
  );
}

const results: number[] = [];
for (let r = 0; r < Number(values.rounds); r++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) once();
  results.push(Number(process.hrtime.bigint() - t) / n);
}
results.sort((a, b) => a - b);
process.stdout.write(
  `Gateway.handle, GET /hello, sync array body: median ${results[results.length >> 1]!.toFixed(0)} ns/request (rounds: ${results.map((x) => x.toFixed(0)).join(', ')})\n`,
);
