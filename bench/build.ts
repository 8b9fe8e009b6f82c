/** What the benchmark scripts share: the project root and compiling the servers to plain JavaScript. */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** Compiles src, adapters and bench/servers into bench/.build, so servers run as users would run them. */
export function buildServers(): void {
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.bench.json`], { stdio: 'inherit' });
}
