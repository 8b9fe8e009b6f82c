/**
 * The process manager of `nsgi serve --workers n` (the cluster primary): forks the workers, which
 * share the listening socket, and keeps n of them serving. It replaces a worker that dies (with a
 * backoff, giving up on a crash loop), one whose event loop stays silent past --timeout, and one
 * that served its --max-requests; SIGHUP reloads every worker in turn, SIGTTIN/SIGTTOU add or
 * remove one, SIGTERM stops gracefully and SIGINT quickly.
 */

import cluster, { type Worker } from 'node:cluster';
import type { ServeArgs } from './options.js';
import { servingLine } from './run.js';
import { beatInterval, type InFlight, type ManagerMessage, type WorkerMessage } from './worker.js';

/** Workers that die before they listen, in a row, before the manager gives up. */
const MAX_START_FAILURES = 5;
/** The first restart delay after a failed start; it doubles with each further failure. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 8000;
/** A new worker has this long to listen (its startup() included) before a reload gives up on it. */
const BOOT_TIMEOUT_MS = 60_000;
/** Beyond the graceful timeout, how long a stopping worker has before it is killed. */
const KILL_MARGIN_MS = 2000;

interface Managed {
  worker: Worker;
  /** Listening (its startup() done). */
  ready: boolean;
  lastBeat: number;
  inFlight: InFlight[];
  /** Being stopped: it no longer counts towards the workers wanted. */
  leaving: boolean;
  /** Resolves once it listens, or with false if it died first. */
  started: Promise<boolean>;
  onStarted: (ok: boolean) => void;
}

const log = (line: string) => process.stderr.write(`nsgi: ${line}\n`);

export function manage(args: ServeArgs): void {
  let wanted = args.workers!;
  const workers = new Map<number, Managed>();
  let stopping = false;
  let announced = false;
  let startFailures = 0;
  let reloading = false;
  let backoff: NodeJS.Timeout | undefined;

  // Workers listen on the inherited socket through the manager (node:cluster shares it), told so by
  // NSGI_FD: systemd's variables are its message to this process only.
  const workerEnv: Record<string, string> = {};
  if (args.socketActivated) {
    delete process.env.LISTEN_FDS;
    delete process.env.LISTEN_PID;
    delete process.env.LISTEN_FDNAMES;
    if ('fd' in args.bind) workerEnv.NSGI_FD = String(args.bind.fd);
  }

  const fork = (): Managed => {
    const worker = cluster.fork(workerEnv);
    let onStarted!: (ok: boolean) => void;
    const started = new Promise<boolean>((r) => (onStarted = r));
    const m: Managed = { worker, ready: false, lastBeat: Date.now(), inFlight: [], leaving: false, started, onStarted };
    workers.set(worker.id, m);
    return m;
  };

  const serving = () => [...workers.values()].filter((m) => !m.leaving);

  /** Forks until `wanted` workers serve (not during a stop). */
  const fill = () => {
    if (stopping || backoff !== undefined) return;
    while (serving().length < wanted) fork();
  };

  /** Stops a worker gracefully, killing it if it outlives the graceful timeout. */
  const retire = (m: Managed, why: string) => {
    if (m.leaving) return;
    m.leaving = true;
    log(`worker ${m.worker.process.pid} ${why}; stopping it gracefully`);
    m.worker.process.kill('SIGTERM');
    const limit = args.drainDelay + args.gracefulTimeout + KILL_MARGIN_MS;
    setTimeout(() => {
      if (workers.has(m.worker.id)) m.worker.process.kill('SIGKILL');
    }, limit).unref();
  };

  /** Starts a replacement first, then retires `old` once the new one listens: no moment without it. */
  const replace = async (old: Managed, why: string): Promise<boolean> => {
    const fresh = fork();
    old.leaving = true; // counted out now, so fill() does not fork another for it
    const ok = await Promise.race([
      fresh.started,
      new Promise<boolean>((r) => setTimeout(() => r(false), BOOT_TIMEOUT_MS)),
    ]);
    if (!ok) {
      old.leaving = false;
      if (workers.has(fresh.worker.id)) {
        fresh.leaving = true;
        fresh.worker.process.kill('SIGKILL');
      }
      return false;
    }
    old.leaving = false;
    retire(old, why);
    return true;
  };

  cluster.on('message', (worker, msg: WorkerMessage) => {
    if (typeof msg !== 'object' || msg === null) return;
    // A stopped worker asks before it exits (see leave() in worker.ts); answered even once it is
    // counted out, and after any connection node:cluster handed it before it stopped listening.
    if (msg.nsgi === 'closed') {
      if (worker.isConnected()) worker.send({ nsgi: 'exit' } satisfies ManagerMessage);
      return;
    }
    const m = workers.get(worker.id);
    if (m === undefined) return;
    switch (msg.nsgi) {
      case 'listening':
        m.ready = true;
        m.lastBeat = Date.now();
        startFailures = 0;
        m.onStarted(true);
        if (!announced) {
          announced = true;
          process.stdout.write(servingLine(args, msg, ` and ${wanted} workers`));
        }
        break;
      case 'beat':
        m.lastBeat = Date.now();
        m.inFlight = msg.inFlight;
        break;
      case 'retire':
        if (!m.leaving && !stopping) void replace(m, `served ${msg.served} requests (--max-requests)`);
        break;
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    const m = workers.get(worker.id);
    workers.delete(worker.id);
    if (m === undefined) return;
    m.onStarted(false);
    if (stopping) {
      if (workers.size === 0) {
        process.stdout.write('nsgi: stopped\n');
        process.exit(0);
      }
      return;
    }
    if (m.leaving) {
      fill();
      return;
    }
    const how = signal ?? `exit code ${code}`;
    if (!m.ready) {
      startFailures++;
      if (startFailures >= MAX_START_FAILURES) {
        log(`${startFailures} workers in a row died before they could serve; giving up (see the errors above)`);
        for (const other of workers.values()) other.worker.process.kill('SIGTERM');
        process.exit(1);
      }
      const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (startFailures - 1));
      log(`worker ${worker.process.pid} died while starting (${how}); starting another in ${delay} ms`);
      clearTimeout(backoff);
      backoff = setTimeout(() => {
        backoff = undefined;
        fill();
      }, delay);
      return;
    }
    log(`worker ${worker.process.pid} died (${how}); starting a new one`);
    fill();
  });

  // A worker whose event loop stops answering (an app stuck in a loop) is killed and replaced.
  if (args.timeout > 0) {
    setInterval(() => {
      const now = Date.now();
      for (const m of workers.values()) {
        if (!m.ready || now - m.lastBeat <= args.timeout) continue;
        const pid = m.worker.process.pid;
        const held =
          m.inFlight.length === 0
            ? 'no request in flight at its last heartbeat'
            : `in flight: ${m.inFlight.map((r) => `${r.line} (for ${((now - r.since) / 1000).toFixed(1)} s)`).join('; ')}`;
        log(
          `worker ${pid} sent no heartbeat for ${((now - m.lastBeat) / 1000).toFixed(1)} s (--timeout ${args.timeout / 1000}); killing it (${held})`,
        );
        m.ready = false;
        m.leaving = true;
        m.worker.process.kill('SIGKILL');
        // Its replacement starts now; the others serve meanwhile.
        fill();
      }
    }, beatInterval(args.timeout)).unref();
  }

  /** SIGHUP: every worker replaced in turn by one that loads the app afresh. */
  const reload = async () => {
    if (reloading || stopping) return;
    reloading = true;
    const old = serving();
    log(`SIGHUP: reloading ${old.length} workers one by one`);
    try {
      for (const m of old) {
        if (stopping) return;
        if (!workers.has(m.worker.id)) continue;
        if (!(await replace(m, 'replaced by a reloaded worker'))) {
          log('reload stopped: a new worker did not start (see the errors above); the other workers keep serving');
          return;
        }
      }
      log('reload done');
    } finally {
      reloading = false;
    }
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      for (const m of workers.values()) m.worker.process.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    clearTimeout(backoff);
    const quick = signal === 'SIGINT';
    process.stdout.write(
      `nsgi: ${signal} received, stopping ${workers.size} workers${quick ? '' : ` (up to ${(args.drainDelay + args.gracefulTimeout) / 1000}s)`}\n`,
    );
    for (const m of workers.values()) m.worker.process.kill(quick ? 'SIGINT' : 'SIGTERM');
    if (workers.size === 0) process.exit(0);
  };

  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => void reload());
  process.on('SIGTTIN', () => {
    wanted++;
    log(`SIGTTIN: ${wanted} workers`);
    fill();
  });
  process.on('SIGTTOU', () => {
    if (wanted <= 1) {
      log('SIGTTOU: one worker is the least; keeping it');
      return;
    }
    wanted--;
    log(`SIGTTOU: ${wanted} workers`);
    const last = serving().at(-1);
    if (last !== undefined) retire(last, 'is one too many (SIGTTOU)');
  });
  fill();
}
