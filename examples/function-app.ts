/**
 * The function form of an app: called with (environ, startResponse), returns the body.
 *   nsgi serve examples/function-app.ts
 */
import type { App } from '../src/index.js';

export const app: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return [Buffer.from('This is an nsgi application!')];
};

export default app;
