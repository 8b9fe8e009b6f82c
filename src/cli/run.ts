/**
 * One serving process of `nsgi serve` (the only one, or a worker of the process manager): the
 * app's startup hook, the server, and the graceful stop (drain delay, close, shutdown hook).
 */

import type { AppLike } from '../types.js';
import type { ResponseRecord } from '../gateway.js';
import { VERSION } from '../version.js';
import { formatAccessLine } from './access-log.js';
import { CliError, loadApp, type LoadedApp } from './load.js';
import type { ServeArgs } from './options.js';
import { SERVERS, type RunningServer } from './servers.js';

export interface Serving {
  loaded: LoadedApp;
  running: RunningServer;
  /**
   * Stops: gracefully, the health path answers 503 for the drain delay, then in-flight requests get
   * the graceful timeout; `quick`, at once. Then the shutdown hook.
   */
  stop(quick?: boolean): Promise<void>;
  /** Drops every connection now. */
  forceClose(): void;
}

export interface ServingHooks {
  /** Wraps the app (the process manager's request tracking). */
  wrap?: ((app: AppLike) => AppLike) | undefined;
  /** Called after the access log for every response. */
  onResponse?: ((record: ResponseRecord) => void) | undefined;
}

/** Loads the app, runs its startup hook and starts the server. */
export async function startServing(args: ServeArgs, hooks: ServingHooks = {}): Promise<Serving> {
  const loaded = await loadApp(args.spec);
  if (loaded.startup !== undefined) {
    try {
      await loaded.startup();
    } catch (err) {
      throw new CliError(`startup() of ${loaded.file} failed: ${(err as Error)?.stack ?? String(err)}`);
    }
  }
  let draining = false;
  const log = args.accessLog;
  const after = hooks.onResponse;
  const onResponse =
    log || after !== undefined
      ? (record: ResponseRecord) => {
          if (log) process.stdout.write(formatAccessLine(record));
          after?.(record);
        }
      : undefined;
  const app = hooks.wrap === undefined ? loaded.app : hooks.wrap(loaded.app);
  const running = await SERVERS[args.server]!(app, {
    bind: args.bind,
    mount: args.mount,
    tls: args.tls,
    h2c: args.h2c,
    limits: args.limits,
    proxyProtocol: args.proxyProtocol,
    proxyAllowFrom: args.proxyAllowFrom,
    trustProxy: args.forwardedAllowIps,
    healthPath: args.healthPath,
    draining: () => draining,
    multiprocess: args.workers !== undefined && args.workers > 1,
    onResponse,
  });
  let stopping: Promise<void> | undefined;
  return {
    loaded,
    running,
    forceClose: () => running.forceClose(),
    stop: (quick = false) =>
      (stopping ??= (async () => {
        draining = true;
        if (args.drainDelay > 0 && !quick) await new Promise((r) => setTimeout(r, args.drainDelay));
        await running.close(quick ? 0 : args.gracefulTimeout);
        if (loaded.shutdown !== undefined) {
          try {
            await loaded.shutdown();
          } catch (err) {
            process.stderr.write(
              `nsgi: shutdown() of ${loaded.file} failed: ${(err as Error)?.stack ?? String(err)}\n`,
            );
          }
        }
      })()),
  };
}

/** The startup line. */
export function servingLine(
  args: ServeArgs,
  s: { file: string; exportName: string; url: string; protocols: string },
  workers?: string,
): string {
  const where = s.url.startsWith('unix:') ? s.url : `${s.url}${args.mount}/`;
  return `nsgi ${VERSION}: serving ${s.file} (export ${s.exportName}) with --server ${args.server}${workers ?? ''} at ${where} (${s.protocols})\n`;
}
