/**
 * A chat room: one page, and a WebSocket at ./ws whose messages go to every open socket. The same
 * app on every host: `nsgi serve examples/chat.ts --server raw|node|express|fastify`.
 */

import type { App, NsgiWebSocket, WebSocketOffer } from '../src/index.js';

const page = (base: string) => `<!doctype html>
<html>
<head><meta charset="utf-8"><title>nsgi chat</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto} #log{list-style:none;padding:0}</style>
</head>
<body>
<h1>nsgi chat</h1>
<p id="status">connecting…</p>
<form id="form"><input id="message" autocomplete="off" placeholder="say something"> <button>Send</button></form>
<ul id="log"></ul>
<script>
const url = new URL(${JSON.stringify(`${base}/ws`)}, location.href);
url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
const socket = new WebSocket(url, 'chat');
const status = document.getElementById('status');
socket.onopen = () => { status.textContent = 'connected'; };
socket.onclose = () => { status.textContent = 'disconnected'; };
socket.onmessage = (event) => {
  const li = document.createElement('li');
  li.textContent = event.data;
  document.getElementById('log').append(li);
};
document.getElementById('form').onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById('message');
  if (input.value !== '') socket.send(input.value);
  input.value = '';
};
</script>
</body>
</html>
`;

/** A chat app with its own room (the sockets of one app instance). */
export function createChat(): App {
  const room = new Set<NsgiWebSocket>();
  return async (environ, startResponse) => {
    const offer = environ['nsgi.websocket'] as WebSocketOffer | undefined;
    const path = environ.PATH_INFO;
    if (path === '/ws') {
      if (offer === undefined) {
        startResponse('426 Upgrade Required', [
          ['Upgrade', 'websocket'],
          ['Content-Type', 'text/plain'],
        ]);
        return [Buffer.from('this address takes a WebSocket\n')];
      }
      const socket = await offer.accept({ protocol: offer.protocols.includes('chat') ? 'chat' : undefined });
      room.add(socket);
      try {
        for await (const message of socket) {
          const text = typeof message === 'string' ? message : Buffer.from(message).toString('utf8');
          for (const peer of room) peer.send(text.slice(0, 1000)).catch(() => room.delete(peer));
        }
      } finally {
        room.delete(socket);
      }
      return [];
    }
    if (path === '/' || path === '') {
      startResponse('200 OK', [['Content-Type', 'text/html; charset=utf-8']]);
      return [Buffer.from(page(environ.SCRIPT_NAME))];
    }
    startResponse('404 Not Found', [['Content-Type', 'text/plain']]);
    return [Buffer.from('Not Found\n')];
  };
}

export const app = createChat();
