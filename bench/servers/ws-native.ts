/** Baseline for bench:ws: a `ws` server on node:http echoing every message. */
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { listen } from './listen.js';

const server = http.createServer((_req, res) => {
  res.writeHead(426, { 'Content-Length': 0 });
  res.end();
});
// The settings nsgi uses by default, so both sides do the same work per message.
const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});
server.on('upgrade', (req, socket, head) =>
  wss.handleUpgrade(req, socket, head, (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
  ),
);
listen(server);
