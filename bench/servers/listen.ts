/** Shared start-up for benchmark servers: listen on PORT (0 = any) and report it to the harness. */
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';

export function listen(server: Server): void {
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
  collectOnSignal();
}

/** With --expose-gc, SIGUSR2 collects garbage: memory figures then count what is retained, not what awaits collection. */
export function collectOnSignal(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) process.on('SIGUSR2', () => gc());
}
