/**
 * The client side of bench:ws, run in its own process:
 *   echo <port> <connections> <seconds> <bytes>: each connection sends a message and waits for its
 *     echo, again and again; prints {"messages": n, "p99ms": x} for the measured seconds.
 *   idle <port> <count>: opens `count` sockets, prints "open", holds them until stdin closes.
 */
import WebSocket from 'ws';

const [mode, portText, a, b, c] = process.argv.slice(2);
const url = `ws://127.0.0.1:${portText}/`;

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function echo(connections: number, seconds: number, bytes: number): Promise<void> {
  const payload = Buffer.alloc(bytes, 0x61);
  const sockets = await Promise.all(Array.from({ length: connections }, connect));
  const latencies: number[] = [];
  let measuring = false;
  let messages = 0;
  let all = 0;
  let stop = false;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          let sent = 0;
          const send = () => {
            if (stop) {
              resolve();
              return;
            }
            sent = performance.now();
            ws.send(payload);
          };
          ws.on('message', () => {
            all++;
            if (measuring) {
              messages++;
              latencies.push(performance.now() - sent);
            }
            send();
          });
          send();
          setTimeout(() => (measuring = true), 1000); // warm-up second
          setTimeout(() => (stop = true), 1000 + seconds * 1000);
        }),
    ),
  );
  latencies.sort((x, y) => x - y);
  const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? NaN;
  process.stdout.write(`${JSON.stringify({ messages: messages / seconds, p99ms: p99, all })}\n`);
  for (const ws of sockets) ws.terminate();
}

async function idle(count: number): Promise<void> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += 200) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(200, count - i) }, connect))));
  }
  process.stdout.write('open\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  });
}

if (mode === 'echo') await echo(Number(a), Number(b), Number(c));
else if (mode === 'idle') await idle(Number(a));
else throw new Error('usage: ws-load echo <port> <connections> <seconds> <bytes> | idle <port> <count>');
