/**
 * The class form of an app: each request constructs an instance, and the instance is the body.
 * start_response is called lazily, during the first iteration, which the interface allows.
 *   nsgi serve examples/class-app.ts
 */
import type { Bytes, Environ, StartResponse } from '../src/index.js';

export class ApplicationClass implements Iterable<Bytes> {
  constructor(
    readonly environ: Environ,
    readonly startResponse: StartResponse,
  ) {}

  *[Symbol.iterator](): Iterator<Bytes> {
    this.startResponse('200 OK', [['Content-Type', 'text/plain']]);
    yield Buffer.from('Hello world!\n');
  }
}

export const app = ApplicationClass;
export default ApplicationClass;
