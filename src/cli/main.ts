#!/usr/bin/env node
/** The `nsgi` command line: `nsgi serve <file>[:<export>] [options]`. */

import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { encodeScriptName } from '../script-name.js';
import { VERSION } from '../version.js';
import { formatAccessLine } from './access-log.js';
import { CliError, loadApp } from './load.js';
import { SERVERS, type RunningServer } from './servers.js';

const USAGE = `Usage: nsgi serve <file>[:<export>] [options]

Serves an nsgi app. <file> is a .ts, .mts, .js or .mjs module; the app is its export named
<export>, else its "app" export, else its default export.

Options:
  --host <addr>            address to listen on (default 127.0.0.1)
  --port <n>               port to listen on, 0 for any free port (default 8080)
  --server <name>          raw (default: the bundled strict HTTP/1.1 server), node, express or fastify
  --mount <prefix>         serve the app under a path prefix, e.g. /app (SCRIPT_NAME)
  --key <file> --cert <file>
                           TLS with this PEM key and certificate; raw, node and fastify then serve
                           HTTP/2 and HTTP/1.1 on the port (chosen by ALPN), express HTTP/1.1
  --http2                  without TLS: HTTP/2 with prior knowledge (h2c, for a proxy that speaks
                           it), on --server node or fastify
  --workers <n>            run n processes sharing the port (node:cluster); a worker that dies is
                           replaced; wsgi.multiprocess is true (default 1: a single process)
  --no-access-log          do not print a line per request
  --shutdown-timeout <s>   on SIGINT/SIGTERM, seconds to let in-flight requests finish (default 10)
  -h, --help               show this help
  -v, --version            print the version
`;

interface ServeArgs {
  spec: string;
  tls: { key: Buffer; cert: Buffer } | undefined;
  h2c: boolean;
  host: string;
  port: number;
  server: string;
  mount: string;
  accessLog: boolean;
  shutdownTimeout: number;
  workers: number;
}

function parseServeArgs(argv: string[]): ServeArgs {
  const accessLog = !argv.includes('--no-access-log');
  const h2c = argv.includes('--http2');
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.filter((a) => a !== '--no-access-log' && a !== '--http2'),
      allowPositionals: true,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8080' },
        server: { type: 'string', default: 'raw' },
        workers: { type: 'string', default: '1' },
        mount: { type: 'string', default: '' },
        key: { type: 'string' },
        cert: { type: 'string' },
        'shutdown-timeout': { type: 'string', default: '10' },
      },
    });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new CliError(
      `${positionals.length === 0 ? 'missing the app file' : `unexpected arguments: ${positionals.slice(1).join(' ')}`}\n\n${USAGE}`,
      2,
    );
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CliError(`--port must be a whole number from 0 to 65535, got ${values.port}`, 2);
  const server = values.server;
  if (!(server in SERVERS))
    throw new CliError(`--server must be one of ${Object.keys(SERVERS).join(', ')}; got ${JSON.stringify(server)}`, 2);
  const shutdownTimeout = Number(values['shutdown-timeout']);
  if (!(shutdownTimeout >= 0))
    throw new CliError(`--shutdown-timeout must be a number of seconds, got ${values['shutdown-timeout']}`, 2);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024) {
    throw new CliError(`--workers must be a whole number of processes from 1 to 1024, got ${values.workers}`, 2);
  }
  let mount = values.mount;
  try {
    mount = encodeScriptName(mount, '--mount') === undefined ? '' : mount;
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  const tls = readTls(values.key, values.cert);
  return {
    spec: positionals[0]!,
    tls,
    h2c,
    host: values.host,
    port,
    server,
    mount,
    accessLog,
    shutdownTimeout,
    workers,
  };
}

/** The PEM files of --key and --cert, read once at start; both or neither. */
function readTls(keyFile: string | undefined, certFile: string | undefined): ServeArgs['tls'] {
  if (keyFile === undefined && certFile === undefined) return undefined;
  if (keyFile === undefined || certFile === undefined)
    throw new CliError(
      `TLS needs both --key and --cert (PEM files); ${keyFile === undefined ? '--key' : '--cert'} is missing`,
      2,
    );
  const read = (flag: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CliError(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 2);
    }
  };
  return { key: read('--key', keyFile), cert: read('--cert', certFile) };
}

async function serve(argv: string[]): Promise<void> {
  const args = parseServeArgs(argv);
  if (args.workers > 1 && cluster.isPrimary) {
    // Fail fast in the primary on what every worker would fail on (a missing file or export).
    await loadApp(args.spec);
    supervise(args);
    return;
  }
  const loaded = await loadApp(args.spec);
  const running: RunningServer = await SERVERS[args.server]!(loaded.app, {
    host: args.host,
    port: args.port,
    mount: args.mount,
    tls: args.tls,
    h2c: args.h2c,
    multiprocess: args.workers > 1,
    onResponse: args.accessLog ? (record) => process.stdout.write(formatAccessLine(record)) : undefined,
  });
  if (cluster.isPrimary) {
    process.stdout.write(
      `nsgi ${VERSION}: serving ${loaded.file} (export ${loaded.exportName}) with --server ${args.server} at ${running.url}${args.mount}/ (${running.protocols})\n`,
    );
  } else {
    process.send?.({
      nsgi: 'listening',
      url: running.url,
      protocols: running.protocols,
      file: loaded.file,
      exportName: loaded.exportName,
    });
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A worker hears Ctrl-C from the terminal and SIGTERM from its primary: one shutdown is enough.
      if (!cluster.isPrimary) return;
      process.stdout.write(`nsgi: ${signal} again, dropping open connections\n`);
      running.forceClose();
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`nsgi: ${signal} received, finishing in-flight requests (up to ${args.shutdownTimeout}s)\n`);
    running.close(args.shutdownTimeout * 1000).then(
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
}

/** A worker that dies sooner than this after starting counts as a crash loop. */
const QUICK_DEATH_MS = 1000;

/**
 * The primary of `--workers n`: forks the workers (they share the listening port), replaces one
 * that dies, and on SIGINT/SIGTERM passes the signal on and exits once every worker has finished.
 */
function supervise(args: ServeArgs): void {
  let stopping = false;
  let announced = false;
  let quickDeaths = 0;
  const started = new Map<Worker, number>();
  const fork = () => started.set(cluster.fork(), Date.now());
  type Listening = { nsgi?: string; url?: string; protocols?: string; file?: string; exportName?: string };
  cluster.on('message', (_worker, msg: Listening) => {
    if (msg?.nsgi !== 'listening' || announced) return;
    announced = true;
    process.stdout.write(
      `nsgi ${VERSION}: serving ${msg.file} (export ${msg.exportName}) with --server ${args.server} and ${args.workers} workers ` +
        `at ${msg.url}${args.mount}/ (${msg.protocols})\n`,
    );
  });
  cluster.on('exit', (worker, code, signal) => {
    const since = started.get(worker) ?? 0;
    started.delete(worker);
    if (stopping) {
      if (started.size === 0) {
        process.stdout.write('nsgi: stopped\n');
        process.exit(0);
      }
      return;
    }
    quickDeaths = Date.now() - since < QUICK_DEATH_MS ? quickDeaths + 1 : 0;
    if (quickDeaths >= 5) {
      process.stderr.write('nsgi: workers keep dying right after they start; giving up (see the errors above)\n');
      process.exit(1);
    }
    process.stderr.write(
      `nsgi: worker ${worker.process.pid} died (${signal ?? `exit code ${code}`}); starting a new one\n`,
    );
    fork();
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      for (const worker of started.keys()) worker.process.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(
      `nsgi: ${signal} received, stopping ${started.size} workers (up to ${args.shutdownTimeout}s)\n`,
    );
    for (const worker of started.keys()) worker.process.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  for (let i = 0; i < args.workers; i++) fork();
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
