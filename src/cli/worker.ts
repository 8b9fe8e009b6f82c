/**
 * A worker of the process manager (`nsgi serve --workers n`): serves like a single process, and
 * tells the manager that it listens, that its event loop is alive (with the requests in flight,
 * for the log if it hangs) and when it has served its --max-requests.
 */

import type { AppLike } from '../types.js';
import { toApp } from '../app-forms.js';
import type { ServeArgs } from './options.js';
import { startServing, type Serving } from './run.js';

/** Messages between the manager and its workers, all tagged `nsgi`. */
export type WorkerMessage =
  | { nsgi: 'listening'; url: string; protocols: string; file: string; exportName: string }
  | { nsgi: 'beat'; inFlight: InFlight[] }
  | { nsgi: 'retire'; served: number }
  | { nsgi: 'closed' }
  /** The last message: once it is written, so are node:cluster's replies before it. */
  | { nsgi: 'exiting' };

/** The manager's answer to `closed`: nothing more can come from node:cluster, the worker may exit. */
export interface ManagerMessage {
  nsgi: 'exit';
}

/** A request in flight: its method and target, and when it started (ms since the epoch). */
export interface InFlight {
  line: string;
  since: number;
}

/** How often a worker reports, as a share of --timeout (and at most every second). */
export function beatInterval(timeout: number): number {
  return Math.max(100, Math.min(1000, timeout / 4));
}

/** In-flight requests named in a heartbeat (a hung worker's log lists them). */
const MAX_NAMED = 10;
/**
 * A request that starts this long after the last request that did sends a heartbeat at once,
 * naming it: an app that hangs on a request hangs before the next timed heartbeat could say which.
 * (Under load, at most 20 such messages a second.)
 */
const REPORT_START_AFTER_MS = 50;

/** How long a stopped worker waits for the manager's `exit` before it exits anyway. */
const LEAVE_TIMEOUT_MS = 2000;

function send(msg: WorkerMessage): void {
  process.send?.(msg);
}

/**
 * Exits a worker that has stopped serving. node:cluster's manager may have handed it a connection
 * just before it saw the listener close; a worker that exits before reading that message leaves the
 * connection open in the manager, never answered nor closed. So the worker asks first: the manager's
 * answer comes after any such connection (one channel, in order), which the worker has by then
 * refused back to the manager for another worker. It exits once its last message is written.
 */
function leave(code: number): void {
  if (process.send === undefined || !process.connected) process.exit(code);
  let exiting = false;
  const exit = () => {
    if (exiting) return;
    exiting = true;
    clearTimeout(timer);
    if (process.connected) process.send!({ nsgi: 'exiting' } satisfies WorkerMessage, () => process.exit(code));
    else process.exit(code);
  };
  const timer = setTimeout(exit, LEAVE_TIMEOUT_MS);
  process.on('message', (msg: Partial<ManagerMessage> | null) => {
    if (msg?.nsgi === 'exit') exit();
  });
  process.on('disconnect', exit);
  send({ nsgi: 'closed' });
}

export async function runWorker(args: ServeArgs): Promise<void> {
  // A request in flight: its line and start, until its record comes.
  const inFlight = new Map<object, InFlight>();
  let served = 0;
  const limit = args.maxRequests > 0 ? args.maxRequests + Math.floor(Math.random() * (args.maxRequestsJitter + 1)) : 0;
  let retiring = false;
  let lastStartReport = 0;
  const beat = () => send({ nsgi: 'beat', inFlight: [...inFlight.values()].slice(0, MAX_NAMED) });
  const track = (app: AppLike): AppLike => {
    const inner = toApp(app);
    return (environ, startResponse) => {
      const now = Date.now();
      inFlight.set(environ, { line: `${String(environ.REQUEST_METHOD)} ${String(environ.REQUEST_URI)}`, since: now });
      if (args.timeout > 0 && now - lastStartReport >= REPORT_START_AFTER_MS) {
        lastStartReport = now;
        beat();
      }
      return inner(environ, startResponse);
    };
  };
  // The manager stops a worker with SIGTERM (gracefully) or SIGINT (quickly); a terminal's Ctrl-C
  // reaches the whole process group, and the manager passes it on too: one stop is enough.
  // eslint-disable-next-line prefer-const -- a signal may come (and read it) before it is set
  let serving: Serving | undefined;
  /** A stop asked for while the worker was still starting: done once it has started. */
  let asked: boolean | undefined;
  let stopping = false;
  const stop = (quick: boolean) => {
    if (serving === undefined) {
      asked = asked === true || quick;
      return;
    }
    if (stopping) {
      if (quick) {
        serving.forceClose();
        process.exit(1);
      }
      return;
    }
    stopping = true;
    serving.stop(quick).then(
      () => leave(0),
      (err: unknown) => {
        process.stderr.write(`nsgi: worker ${process.pid}: error while stopping: ${String(err)}\n`);
        leave(1);
      },
    );
  };
  process.on('SIGTERM', () => stop(false));
  process.on('SIGINT', () => stop(true));
  // The manager gone (killed outright): nothing would stop this worker any more.
  process.on('disconnect', () => stop(false));

  serving = await startServing(args, {
    wrap: track,
    onResponse: (record) => {
      if (record.environ !== undefined) inFlight.delete(record.environ);
      served++;
      if (limit > 0 && served >= limit && !retiring) {
        retiring = true;
        send({ nsgi: 'retire', served });
      }
    },
  });
  send({
    nsgi: 'listening',
    url: serving.running.url,
    protocols: serving.running.protocols,
    file: serving.loaded.file,
    exportName: serving.loaded.exportName,
  });
  if (args.timeout > 0) {
    beat();
    setInterval(beat, beatInterval(args.timeout)).unref();
  }
  if (asked !== undefined) stop(asked);
}
