/** What the conformance suite needs from a server: start an app, tell the port, close. */

import type { AppLike } from '../../src/types.js';
import type { GatewayOptions } from '../../src/gateway.js';

export interface ServerHandle {
  port: number;
  close(): Promise<void>;
}

/** Options every host must honour for the suite; the mount prefix is applied the host's own way. */
export interface FactoryOptions extends Pick<GatewayOptions, 'maxBodySize' | 'trustProxy' | 'errorLog' | 'onResponse'> {
  /** Mount prefix: '' (root) or e.g. '/mnt'. */
  mount: string;
}

export type ServerFactory = (app: AppLike, options: FactoryOptions) => Promise<ServerHandle>;

/** Collects what the server logs, so tests can assert on it and the output stays quiet. */
export class LogCapture {
  lines: string[] = [];
  write(s: string): void {
    this.lines.push(s);
  }
  get text(): string {
    return this.lines.join('');
  }
  clear(): void {
    this.lines = [];
  }
}
