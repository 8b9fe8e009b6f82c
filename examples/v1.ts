/**
 * v1 of the tutorial's socket server, as an nsgi app: the same hello-world page for any path.
 *   nsgi serve examples/v1.ts
 */
import type { App } from '../src/index.js';

const html = Buffer.from(`<html>
<head>
<title>simple server</title>
</head>
<body>
<p>hello world</p>
</body>
</html>
`);

export const app: App = (_environ, startResponse) => {
  startResponse('200 OK', [
    ['Server', 'simple server'],
    ['Content-Type', 'text/html; charset=utf-8'],
  ]);
  return [html];
};

export default app;
