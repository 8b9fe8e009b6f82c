/** Runs the `nsgi` command line as a real process, for the CLI and deployment tests. */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { sleep } from './raw-http.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = 'src/cli/main.ts';

export interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv | undefined;
  /** Extra descriptors from fd 3 on (an inherited listening socket). */
  extraFds?: number[] | undefined;
  /** Run through `sh -c 'LISTEN_PID=$$ exec ...'`, as systemd sets LISTEN_PID to the server's pid. */
  listenPid?: boolean | undefined;
}

export function run(args: string[], options: RunOptions = {}): Run {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...(options.extraFds ?? [])];
  const node = [process.execPath, '--import', 'tsx', MAIN, ...args];
  const child = options.listenPid
    ? spawn('sh', ['-c', 'LISTEN_PID=$$ exec "$@"', 'sh', ...node], { cwd: root, stdio, env: options.env })
    : spawn(node[0]!, node.slice(1), { cwd: root, stdio, env: options.env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  // 'close': the exit code once every output has arrived (workers write to the same pipes).
  const exit = once(child, 'close').then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Waits until `pattern` appears in the output, or fails with what the process said. */
export async function waitFor(r: Run, pattern: RegExp, timeout = 15000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const m = pattern.exec(r.stdout()) ?? pattern.exec(r.stderr());
    if (m) return m;
    if (r.child.exitCode !== null || Date.now() > deadline) {
      r.child.kill('SIGKILL');
      throw new Error(`no ${String(pattern)} from the server:\n${r.stdout()}\n${r.stderr()}`);
    }
    await sleep(50);
  }
}

/** Starts `nsgi serve ... --port 0` and resolves with the URL it prints. */
export async function serve(args: string[], options: RunOptions = {}): Promise<Run & { url: string }> {
  const r = run(['serve', ...args, '--port', '0'], options);
  const m = await waitFor(r, /at (https?:\/\/127\.0\.0\.1:\d+)/);
  return { ...r, url: m[1]! };
}

export async function stop(r: Run, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  r.child.kill(signal);
  return r.exit;
}

/** A port free right now (for a server that must keep its port across restarts). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export const ENV_APP = 'test/fixtures/apps/env.mjs';

export interface Seen {
  pid: number;
  remote: string;
  scheme: string;
  path: string;
  size: number;
  proxy: { version: number; command: string } | null;
}

/** One GET on a new connection (so that the kernel spreads them over the workers). */
export async function get(
  url: string,
  headers: Record<string, string> = {},
  timeout = 5000,
): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { headers: { Connection: 'close', ...headers }, signal: AbortSignal.timeout(timeout) });
  return { status: res.status, text: await res.text() };
}

export async function seen(url: string, headers?: Record<string, string>): Promise<Seen> {
  const r = await get(url, headers);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text) as Seen;
}

/**
 * Sends requests from `concurrency` loops until `until()` resolves; counts answers by body and the
 * failures (a refused or reset connection, or a status other than 200).
 */
export async function load(
  url: string,
  concurrency: number,
  until: Promise<unknown>,
): Promise<{ sent: number; failed: string[]; bodies: string[] }> {
  let done = false;
  void until.then(() => (done = true));
  const failed: string[] = [];
  const bodies: string[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!done) {
        sent++;
        try {
          const r = await get(url);
          if (r.status !== 200) failed.push(`status ${r.status}: ${r.text}`);
          else bodies.push(r.text);
        } catch (err) {
          failed.push(String((err as Error).cause ?? err));
        }
      }
    }),
  );
  return { sent, failed, bodies };
}
