/** Loads an app for the CLI from `file[:export]`, with errors that say what to fix. */

import { existsSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { whyNotApp } from '../app-forms.js';
import type { AppLike } from '../types.js';

/** A problem the user can fix; the CLI prints its message and exits with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

const LOADABLE = new Set(['.ts', '.mts', '.js', '.mjs']);
const TYPESCRIPT = new Set(['.ts', '.mts']);

/** Splits `./app.ts:myApp` into file and export name. A Windows drive letter is not an export. */
export function parseAppSpec(spec: string): { file: string; exportName: string | undefined } {
  const i = spec.lastIndexOf(':');
  if (i > 1 && !spec.slice(i + 1).includes('/') && !spec.slice(i + 1).includes('\\')) {
    const exportName = spec.slice(i + 1);
    if (exportName === '')
      throw new CliError(`no export name after ':' in ${JSON.stringify(spec)}; write file.ts:exportName`, 2);
    return { file: spec.slice(0, i), exportName };
  }
  return { file: spec, exportName: undefined };
}

let typescriptLoader: Promise<void> | undefined;

/** Makes `import()` of .ts/.mts files work when the CLI itself runs as plain JavaScript. */
function enableTypeScript(): Promise<void> {
  typescriptLoader ??= import('tsx/esm/api').then(({ register }) => {
    register();
  });
  return typescriptLoader;
}

/** A lifespan hook the app module may export: `startup()` or `shutdown()`. */
export type LifespanHook = () => unknown;

export interface LoadedApp {
  app: AppLike;
  file: string;
  exportName: string;
  /** Runs before the server takes connections. */
  startup: LifespanHook | undefined;
  /** Runs once the server has drained. */
  shutdown: LifespanHook | undefined;
}

export async function loadApp(spec: string, cwd = process.cwd()): Promise<LoadedApp> {
  const { file, exportName } = parseAppSpec(spec);
  const path = resolve(cwd, file);
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new CliError(`cannot find the app file ${JSON.stringify(file)} (looked for ${path})`);
  }
  const ext = extname(path);
  if (!LOADABLE.has(ext)) {
    throw new CliError(`cannot load ${JSON.stringify(file)}: app files must end in .ts, .mts, .js or .mjs`);
  }
  if (TYPESCRIPT.has(ext) && !process.execArgv.some((a) => a.includes('tsx'))) await enableTypeScript();

  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`failed to load ${JSON.stringify(file)}: ${(err as Error)?.stack ?? String(err)}`);
  }

  const names = Object.keys(mod);
  const listed = names.length ? names.join(', ') : 'nothing';
  let chosen: string;
  if (exportName !== undefined) {
    if (!(exportName in mod)) {
      throw new CliError(`${file} has no export named ${JSON.stringify(exportName)}; it exports: ${listed}`);
    }
    chosen = exportName;
  } else if ('app' in mod) {
    chosen = 'app';
  } else if ('default' in mod) {
    chosen = 'default';
  } else {
    throw new CliError(
      `${file} exports neither "app" nor a default export; name the one to serve, e.g. nsgi serve ${file}:${names[0] ?? 'myApp'} (it exports: ${listed})`,
    );
  }
  const app = mod[chosen];
  const why = whyNotApp(app);
  if (why !== undefined) throw new CliError(`export ${JSON.stringify(chosen)} of ${file}: ${why}`);
  const hook = (name: 'startup' | 'shutdown'): LifespanHook | undefined => {
    const h = mod[name];
    if (h === undefined) return undefined;
    if (typeof h !== 'function')
      throw new CliError(
        `${file} exports ${name} as ${typeof h}; export it as a function (async or not), or not at all`,
      );
    return h as LifespanHook;
  };
  return { app: app as AppLike, file, exportName: chosen, startup: hook('startup'), shutdown: hook('shutdown') };
}
