/** What the benchmark scripts share: the project root and compiling the servers to plain JavaScript. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** Compiles src, adapters and bench/servers into bench/.build, so servers run as users would run them. */
export function buildServers(): void {
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.bench.json`], {
    stdio: 'inherit',
  });
}

/** Starts a benchmark server process and resolves with the port it reports ("ready <port>"). */
export async function spawnServer(
  name: string,
  cmd: string,
  args: string[],
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(cmd, args, {
    cwd: root,
    env: { ...process.env, PORT: '0', NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
  });
  return { child, port };
}

/** Stops benchmark servers and waits until they are gone, so the next ones do not share the core with them. */
export async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map((child) =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
    ),
  );
}

/** A process's user + system CPU time in milliseconds, from /proc. */
export function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const TASKSET = has('taskset');

/** `cmd args` run on one core, with taskset where it exists. */
export function pinned(core: number, cmd: string, args: string[]): [string, string[]] {
  return TASKSET ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
}
