/** The nsgi side of bench:ws: every message echoed on the socket it came on. */
import type { App, WebSocketOffer } from '../../src/index.js';

export const echo: App = async (environ, startResponse) => {
  const offer = environ['nsgi.websocket'] as WebSocketOffer | undefined;
  if (offer === undefined) {
    startResponse('426 Upgrade Required', [['Content-Type', 'text/plain']]);
    return [Buffer.from('WebSocket only\n')];
  }
  const ws = await offer.accept();
  for await (const message of ws) await ws.send(message);
  return [];
};
