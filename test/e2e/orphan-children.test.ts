import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient } from '../../core/api/client.js';
import { listMarkedProcesses, markerFor, type MarkedProcess } from '../../core/process/child-processes.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { running, until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

const linux = existsSync('/proc/self/environ');


describe('child processes across a daemon crash', () => {
  it('a clone orphaned by kill -9 is ended by the restarted daemon before recovery wipes its folder', { skip: linux ? false : 'needs /proc (Linux)' }, async () => {
    // A git server that takes the request and never answers: the clone hangs for as long as nobody ends it.
    let requests = 0;
    const server = createServer(() => void requests++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/repo.git`;

    const dir = tempDir('wsd-orphans-');
    const config = testDaemonConfig(dir, 'initializers:\n  git:\n    protocols: [http]\n    allowedNetworks: [127.0.0.1/32]\n');
    const dataDir = path.join(dir, 'data');
    const folder = path.join(dataDir, 'workspaces', 'ws-clone');
    const marker = markerFor(dataDir);
    let first: DaemonProcess | undefined;
    let second: DaemonProcess | undefined;
    let secondExit: number | string = 0;
    let client: WsdClient | undefined;
    try {
      first = await startDaemonProcess({ args: ['--config', config] });
      client = new WsdClient({ address: first.grpcAddress });
      // Not awaited: it answers only when the clone ends, and the daemon dies first.
      client.initWorkspace({ id: 'ws-clone', metadata: { owner: 'olga', meta_id: 'm-clone' }, initializer: { git: { remote_uri: url } } }).catch(() => {});
      let gits: MarkedProcess[] = [];
      await until(async () => {
        gits = (await listMarkedProcesses(marker)).filter((p) => /\bgit\b|git-remote/.test(p.command));
        return gits.length > 0 && requests > 0;
      }, 'a git process carrying the daemon marker, waiting on the server', 20_000);
      client.close();
      client = undefined;

      assert.equal(await first.stop('SIGKILL'), 'SIGKILL');
      for (const git of gits) assert.equal(await running(git.pid), true, `git outlived its daemon: ${git.command}`);

      second = await startDaemonProcess({ args: ['--config', config] });
      // The sweep ran before the daemon said ready; everything the first daemon started is gone.
      for (const git of gits) assert.equal(await running(git.pid), false, `still running: ${git.command}`);
      assert.deepEqual(await listMarkedProcesses(marker), [], 'no process carries the marker');
      const swept = second.logs.filter((l) => l.msg === 'ending a child process left behind by a previous wsd').map((l) => l.pid);
      for (const git of gits) assert.ok(swept.includes(git.pid), `the sweep logged ${git.pid}`);

      client = new WsdClient({ address: second.grpcAddress });
      assert.equal(existsSync(folder), false, 'the interrupted clone was wiped');
      const described = await client.describeWorkspace('ws-clone');
      assert.equal(described.summary?.state, 'WORKSPACE_STATE_FAILED');
      assert.match(described.last_error, /interrupted by a daemon restart/);
      await assert.rejects(client.waitForInit('ws-clone'), (e: ServiceError) => e.code === status.FAILED_PRECONDITION);
      // Nothing writes the folder back later (as the orphaned git used to): check a few times over two seconds.
      for (let i = 0; i < 8; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        assert.equal(existsSync(folder), false, `the folder came back after ${(i + 1) * 250} ms`);
      }
      await client.disposeWorkspace('ws-clone');
    } finally {
      client?.close();
      await first?.stop('SIGKILL');
      // Everything is cleaned up before the stop code is asserted: a failed assertion must not leave a server running.
      secondExit = second ? await second.stop() : 0;
      for (const p of await listMarkedProcesses(marker)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    assert.equal(secondExit, 0, 'the restarted daemon stops cleanly');
  });
});
