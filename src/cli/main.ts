#!/usr/bin/env node
/** The `nsgi` command line: `nsgi serve <file>[:<export>] [options]`. */

import cluster from 'node:cluster';
import { VERSION } from '../version.js';
import { CliError, loadApp } from './load.js';
import { manage } from './manager.js';
import { parseServeArgs, USAGE, type ServeArgs } from './options.js';
import { RELOAD_CHILD, reloadOnChange } from './reload.js';
import { servingLine, startServing, type Serving } from './run.js';
import { runWorker } from './worker.js';

async function serve(argv: string[]): Promise<void> {
  const args = parseServeArgs(argv);
  if (cluster.isWorker) return runWorker(args);
  if (args.reload && process.env[RELOAD_CHILD] === undefined) {
    // Fail fast here on what every restart would fail on (a missing file or export).
    await loadApp(args.spec);
    reloadOnChange(
      argv.filter((a) => a !== '--reload'),
      args.spec,
    );
    return;
  }
  if (args.workers !== undefined) {
    await loadApp(args.spec);
    manage(args);
    return;
  }
  return serveAlone(args);
}

/** One process, no manager: SIGTERM stops gracefully, SIGINT quickly (requests in flight are dropped); either twice, at once. */
async function serveAlone(args: ServeArgs): Promise<void> {
  // eslint-disable-next-line prefer-const -- a signal may come (and read it) before it is set
  let serving: Serving | undefined;
  /** A signal that came while the app was starting: acted on once it has started. */
  let asked: NodeJS.Signals | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (serving === undefined) {
      asked = asked === 'SIGINT' ? asked : signal;
      return;
    }
    if (stopping) {
      process.stdout.write(`nsgi: ${signal} again, dropping open connections\n`);
      serving.forceClose();
      process.exit(1);
    }
    stopping = true;
    const quick = signal === 'SIGINT';
    process.stdout.write(
      quick
        ? `nsgi: ${signal} received, stopping now\n`
        : `nsgi: ${signal} received, finishing in-flight requests (up to ${(args.drainDelay + args.gracefulTimeout) / 1000}s)\n`,
    );
    serving.stop(quick).then(
      () => {
        process.stdout.write('nsgi: stopped\n');
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`nsgi: error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  serving = await startServing(args);
  const { running, loaded } = serving;
  process.stdout.write(servingLine(args, { ...running, file: loaded.file, exportName: loaded.exportName }));
  if (asked !== undefined) stop(asked);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    if (command === undefined) process.exitCode = 2;
    return;
  }
  if (command === '-v' || command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (command !== 'serve') throw new CliError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`, 2);
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  await serve(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof CliError) {
    process.stderr.write(`nsgi: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`nsgi: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
