/** The nsgi app every nsgi server in the benchmark runs: the same responses as the native handlers. */
import type { App, ResponseHeaders } from '../../src/index.js';
import { BIG, HELLO, TEXT } from './payloads.js';

const plain: ResponseHeaders = [['Content-Type', TEXT]];

const echo: App = async (environ, startResponse) => {
  const body = await environ['wsgi.input'].read();
  startResponse('200 OK', plain);
  return [body];
};

export const app: App = (environ, startResponse) => {
  switch (environ.PATH_INFO) {
    case '/hello':
      startResponse('200 OK', plain);
      return [HELLO];
    case '/64k':
      startResponse('200 OK', plain);
      return [BIG];
    case '/echo':
      return echo(environ, startResponse);
    default:
      startResponse('404 Not Found', plain);
      return [];
  }
};
