/**
 * `nsgi serve --reload` (development): the server runs in a child process, restarted when a file
 * under the app's directory changes. node_modules and dot-directories are not watched.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { parseAppSpec } from './load.js';

/** Changes arriving within this window cause one restart. */
const SETTLE_MS = 100;
/** The child's grace on a restart: requests in flight get this long. */
const RESTART_GRACE_S = '1';
/** Marks the child, which serves instead of watching. */
export const RELOAD_CHILD = 'NSGI_RELOAD_CHILD';

const ignored = (file: string) => file.split(sep).some((part) => part === 'node_modules' || part.startsWith('.'));

export function reloadOnChange(argv: string[], spec: string): void {
  const dir = dirname(resolve(parseAppSpec(spec).file));
  let child: ChildProcess | undefined;
  let pending: NodeJS.Timeout | undefined;
  let restarting = false;
  let stopping = false;

  const start = () => {
    child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1]!, 'serve', ...argv, '--graceful-timeout', RESTART_GRACE_S],
      {
        stdio: 'inherit',
        env: { ...process.env, [RELOAD_CHILD]: '1' },
      },
    );
    child.once('exit', (code, signal) => {
      child = undefined;
      if (stopping) process.exit(code ?? 0);
      if (restarting) {
        restarting = false;
        start();
      } else if (signal === null) {
        process.stderr.write(`nsgi: the server exited (code ${code}); waiting for a change to restart it\n`);
      }
    });
  };

  const restart = (file: string) => {
    process.stdout.write(`nsgi: ${file} changed; restarting\n`);
    if (child === undefined) {
      start();
      return;
    }
    restarting = true;
    child.kill('SIGTERM');
  };

  watch(dir, { recursive: true }, (_event, file) => {
    if (file === null || ignored(file)) return;
    clearTimeout(pending);
    pending = setTimeout(() => restart(file), SETTLE_MS);
  });
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    if (child === undefined) process.exit(0);
    child.kill(signal);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  start();
}
