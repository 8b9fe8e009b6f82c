/**
 * Every seed example under one server: `npm start` serves this on http://127.0.0.1:8080/.
 */
import type { App } from '../src/index.js';
import { mount } from '../src/middleware/index.js';
import { ApplicationClass } from './class-app.js';
import { app as chat } from './chat.js';
import { app as dispatch } from './dispatch.js';
import { app as functionApp } from './function-app.js';
import { app as ipBlock } from './ip-block.js';
import { app as v1 } from './v1.js';
import { app as v2 } from './v2.js';

const examples: Array<[path: string, title: string]> = [
  ['/v1', 'v1: the same hello-world page for any path'],
  ['/v2/', 'v2: / says hello world'],
  ['/v2/name', 'v2: /name says who'],
  ['/v2/nothing-here', 'v2: anything else is 404'],
  ['/function', 'an app as a function'],
  ['/class', 'an app as a class'],
  ['/ip-block', 'the IP allow-list middleware'],
  ['/dispatch/dog', 'path dispatch: /dog'],
  ['/dispatch/cat', 'path dispatch: /cat'],
  ['/dispatch/monkey', 'path dispatch: anything else is 404'],
  ['/chat/', 'a chat room over WebSocket (open it in two windows)'],
];

const index: App = (environ, startResponse) => {
  if (environ.PATH_INFO !== '/' && environ.PATH_INFO !== '') {
    startResponse('404 Not Found', [['Content-Type', 'text/plain']]);
    return [Buffer.from('Not Found')];
  }
  const base = environ.SCRIPT_NAME;
  const items = examples
    .map(([path, title]) => `<li><a href="${base}${path}">${base}${path}</a> — ${title}</li>`)
    .join('\n');
  startResponse('200 OK', [['Content-Type', 'text/html; charset=utf-8']]);
  return [
    Buffer.from(`<!doctype html>
<html>
<head><meta charset="utf-8"><title>nsgi examples</title></head>
<body>
<h1>nsgi examples</h1>
<ul>
${items}
</ul>
</body>
</html>
`),
  ];
};

export const app = mount({
  '/v1': v1,
  '/v2': v2,
  '/function': functionApp,
  '/class': ApplicationClass,
  '/ip-block': ipBlock,
  '/dispatch': dispatch,
  '/chat': chat,
  '/': index,
});

export default app;
