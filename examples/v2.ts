/**
 * v2 of the tutorial's socket server: `/` says hello, `/name` says who, anything else is a 404.
 *   nsgi serve examples/v2.ts
 */
import type { App } from '../src/index.js';

const page = (content: string) =>
  Buffer.from(`<html>
<head>
<title>simple server</title>
</head>
<body>
<p>${content}</p>
</body>
</html>
`);

const pages: Record<string, [status: string, body: Buffer]> = {
  '/': ['200 OK', page('hello world')],
  '/name': ['200 OK', page('my name is sheng')],
};
const missing: [string, Buffer] = ['404 Not Found', page('你访问的资源不存在')];

export const app: App = (environ, startResponse) => {
  // Mounted at a prefix, the app's own root arrives as PATH_INFO '' (no trailing slash).
  const [status, body] = pages[environ.PATH_INFO || '/'] ?? missing;
  startResponse(status, [
    ['Server', 'simple server'],
    ['Content-Type', 'text/html; charset=utf-8'],
  ]);
  return [body];
};

export default app;
