/**
 * The systemd units in deploy/systemd, run the way systemd runs them: the socket of nsgi.socket
 * opened here and passed as fd 3 with LISTEN_FDS=1 and LISTEN_PID, ExecStart's arguments as
 * written (the app path aside), ExecReload's SIGHUP and KillSignal's SIGTERM.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import { root, run, waitFor } from '../helpers/cli.js';

/** The value of `key=` in a unit file. */
function unitValue(file: string, key: string): string {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(readFileSync(`${root}/deploy/systemd/${file}`, 'utf8'));
  assert.ok(m, `${key}= in ${file}`);
  return m[1]!.trim();
}

describe('deploy: systemd socket activation', () => {
  it('serves on the socket systemd passes, reloads on ExecReload, stops on KillSignal', async () => {
    const listen = unitValue('nsgi.socket', 'ListenStream');
    const host = listen.slice(0, listen.lastIndexOf(':'));
    // The unit's port may be taken on this machine: the same address, any free port.
    const listener = net.createServer();
    await new Promise<void>((r) => listener.listen(0, host, r));
    const port = (listener.address() as net.AddressInfo).port;
    const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;

    const exec = unitValue('nsgi.service', 'ExecStart').split(/\s+/);
    const args = exec
      .slice(exec.indexOf('nsgi') + 1)
      .map((a) => (a.endsWith('app.js') ? 'test/fixtures/apps/env.mjs' : a));
    assert.equal(args[0], 'serve');
    const health = args[args.indexOf('--health-path') + 1]!;
    const s = run(args, { env: { ...process.env, LISTEN_FDS: '1' }, extraFds: [fd], listenPid: true });
    try {
      await waitFor(s, new RegExp(`at http://${host.replace(/\./g, '\\.')}:${port}/`));
      listener.close(); // systemd keeps its copy; the server has its own
      const pids = new Set<number>();
      for (let i = 0; i < 40; i++) {
        const res = await fetch(`http://${host}:${port}/`, { headers: { Connection: 'close' } });
        pids.add(((await res.json()) as { pid: number }).pid);
      }
      assert.ok(pids.size > 1, 'the workers share the socket');
      assert.equal((await fetch(`http://${host}:${port}${health}`)).status, 200);

      assert.match(unitValue('nsgi.service', 'ExecReload'), /kill -HUP \$MAINPID/);
      s.child.kill('SIGHUP');
      await waitFor(s, /reload done/, 60_000);
      assert.equal((await fetch(`http://${host}:${port}/`)).status, 200);

      assert.equal(unitValue('nsgi.service', 'KillSignal'), 'SIGTERM');
      const stopSec = Number(unitValue('nsgi.service', 'TimeoutStopSec'));
      const t0 = Date.now();
      s.child.kill('SIGTERM');
      assert.equal(await s.exit, 0, s.stderr());
      assert.ok(Date.now() - t0 < stopSec * 1000);
    } finally {
      s.child.kill('SIGKILL');
    }
  });
});
