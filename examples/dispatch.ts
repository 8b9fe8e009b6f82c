/**
 * Path dispatching from the tutorial: /dog and /cat each have a handler, anything else is 404,
 * and the whole app sits behind the IP allow-list middleware.
 *   nsgi serve examples/dispatch.ts
 */
import type { App, Body, StartResponse } from '../src/index.js';
import { IPAllowlistMiddleware } from './ip-block.js';

const text = (startResponse: StartResponse, status: string, body: string): Body => {
  startResponse(status, [['Content-Type', 'text/plain']]);
  return [Buffer.from(body)];
};

const dog = (sr: StartResponse) => text(sr, '200 OK', 'This is dog!');
const cat = (sr: StartResponse) => text(sr, '200 OK', 'This is cat!');
const notFound = (sr: StartResponse) => text(sr, '404 Not Found', 'Not Found');

const mapping: Record<string, (sr: StartResponse) => Body> = { dog, cat };

export const application: App = (environ, startResponse) => {
  const path = environ.PATH_INFO.replace(/^\/+/, '');
  const handler = Object.hasOwn(mapping, path) ? mapping[path]! : notFound;
  return handler(startResponse);
};

export const app = new IPAllowlistMiddleware(application);
export default app;
