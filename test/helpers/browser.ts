/**
 * Headless Chromium for the browser tests, with nothing installed outside npm: a `chromium` on the
 * PATH when there is one, else the build that the `@sparticuz/chromium` devDependency ships in its
 * tarball, unpacked once into node_modules/.cache.
 */

import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const SYSTEM_NAMES = ['chromium', 'chromium-browser'];
/** Where the packaged build is unpacked, beside the other tools' caches in node_modules. */
const CACHE_ROOT = join(
  dirname(createRequire(import.meta.url).resolve('playwright-core/package.json')),
  '..',
  '.cache',
);
/**
 * The packaged build's flags (it is made for serverless hosts), less those that would change what a
 * page may do, so the tests see a user's browser's same-origin rules, and --single-process, under
 * which closing a page takes the whole browser down.
 */
const DROPPED_FLAGS = new Set(['--disable-web-security', '--allow-running-insecure-content', '--single-process']);

const FIX =
  'the browser tests need headless Chromium: run `npm install` (it brings the devDependency @sparticuz/chromium), ' +
  'or put a Chromium on the PATH (Debian: apt-get install chromium)';

/** A `chromium` executable on the PATH, if any. */
function systemChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    for (const name of SYSTEM_NAMES) {
      const file = join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

interface Packaged {
  executablePath: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * The packaged build, unpacked once per version. The package unpacks into os.tmpdir(), so it is
 * pointed at a fresh directory that is then renamed into place: test files run in parallel
 * processes, and a half-written binary must never be found by another.
 */
async function packagedChromium(): Promise<Packaged> {
  let Chromium: typeof import('@sparticuz/chromium').default;
  let version: string;
  try {
    Chromium = (await import('@sparticuz/chromium')).default;
    // The package exports no package.json; its entry is build/{cjs,esm}/index.*.
    const root = join(dirname(createRequire(import.meta.url).resolve('@sparticuz/chromium')), '..', '..');
    version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch (err) {
    throw new Error(`${FIX} (${(err as Error).message})`, { cause: err });
  }
  const dir = join(CACHE_ROOT, `nsgi-chromium-${version}`);
  if (!existsSync(join(dir, 'chromium'))) {
    mkdirSync(CACHE_ROOT, { recursive: true });
    const partial = mkdtempSync(`${dir}.partial-`);
    const tmpdir = process.env.TMPDIR;
    process.env.TMPDIR = partial;
    try {
      await Chromium.executablePath();
    } catch (err) {
      rmSync(partial, { recursive: true, force: true });
      throw new Error(`${FIX} (unpacking @sparticuz/chromium failed: ${(err as Error).message})`, { cause: err });
    } finally {
      if (tmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmpdir;
    }
    // The package's fonts.conf names /tmp/fonts; this one names the unpacked fonts.
    writeFileSync(
      join(partial, 'fonts', 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${join(dir, 'fonts')}</dir>\n  <cachedir>${join(dir, 'fonts-cache')}</cachedir>\n</fontconfig>\n`,
    );
    try {
      renameSync(partial, dir);
    } catch {
      // Another process renamed its copy first: use that one.
      rmSync(partial, { recursive: true, force: true });
    }
  }
  return {
    executablePath: join(dir, 'chromium'),
    args: Chromium.args.filter((flag) => !DROPPED_FLAGS.has(flag)),
    env: { FONTCONFIG_PATH: join(dir, 'fonts') },
  };
}

/** Launches headless Chromium, or fails with what to install. */
export async function launchBrowser(): Promise<Browser> {
  const system = systemChromium();
  if (system !== undefined) return chromium.launch({ executablePath: system, args: ['--no-sandbox'] });
  const packaged = await packagedChromium();
  return chromium.launch({
    executablePath: packaged.executablePath,
    args: packaged.args,
    env: { ...process.env, ...packaged.env },
  });
}
