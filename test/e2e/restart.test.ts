import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WsdClient } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';

describe('restart recovery', () => {
  it('serves ready workspaces again after kill -9, wipes interrupted inits and finishes interrupted disposals', async () => {
    const dir = tempDir('wsd-restart-');
    const config = testDaemonConfig(dir);
    const workingArea = path.join(dir, 'data', 'workspaces');
    const stateDir = path.join(dir, 'data', 'state');

    const first = await startDaemonProcess({ args: ['--config', config] });
    let client = new WsdClient({ address: first.grpcAddress });
    try {
      for (const id of ['ws-1', 'ws-2']) {
        await client.initWorkspace({ id, metadata: { owner: 'carol', meta_id: `m-${id}` }, initializer: { empty: {} } });
        writeFileSync(path.join(workingArea, id, 'notes.txt'), `work in ${id}\n`);
      }
      await client.initWorkspace({ id: 'ws-3', metadata: { owner: 'carol', meta_id: 'm-ws-3' }, initializer: { empty: {} } });
    } finally {
      client.close();
      assert.equal(await first.stop('SIGKILL'), 'SIGKILL');
    }

    // What a crash in the middle of an init or of a dispose leaves behind, as state files say it.
    // The interrupted init had provisioned its folder (the quota handle says so), so the folder is wsd's to wipe.
    // ws-3's state is written where wsd < 0.2 kept it, beside the folders: the start moves it to the state folder.
    const record = (id: string) => JSON.parse(readFileSync(path.join(stateDir, `${id}.json`), 'utf8'));
    const interrupted = { ...record('ws-1'), id: 'ws-half', metaId: 'm-half', folder: path.join(workingArea, 'ws-half'), state: 'initializing' };
    interrupted.quota = { ...interrupted.quota, workspaceId: 'ws-half', dir: interrupted.folder };
    mkdirSync(interrupted.folder);
    writeFileSync(path.join(interrupted.folder, 'partial-clone'), 'x');
    writeFileSync(path.join(stateDir, 'ws-half.json'), JSON.stringify(interrupted));
    const disposing = { ...record('ws-3'), state: 'disposing', dispose: { backup: true, finalBackupDone: false } };
    rmSync(path.join(stateDir, 'ws-3.json'));
    writeFileSync(path.join(workingArea, 'ws-3.workspace.json'), JSON.stringify(disposing));

    const second = await startDaemonProcess({ args: ['--config', config] });
    client = new WsdClient({ address: second.grpcAddress });
    try {
      for (const id of ['ws-1', 'ws-2']) {
        assert.equal(await client.isWorkspaceExists(id), true, id);
        await client.waitForInit(id);
        assert.equal((await client.describeWorkspace(id)).summary?.state, 'WORKSPACE_STATE_READY');
      }
      assert.equal(await client.isWorkspaceExists('ws-half'), false);
      assert.equal(existsSync(interrupted.folder), false, 'the interrupted init was wiped');
      const half = await client.describeWorkspace('ws-half');
      assert.equal(half.summary?.state, 'WORKSPACE_STATE_FAILED');
      assert.match(half.last_error, /interrupted by a daemon restart/);

      // The interrupted dispose finishes by itself, with its final backup.
      const deadline = Date.now() + 30_000;
      assert.equal(existsSync(path.join(workingArea, 'ws-3.workspace.json')), false, 'the legacy state file was moved');
      while (existsSync(path.join(stateDir, 'ws-3.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(existsSync(path.join(workingArea, 'ws-3')), false);
      assert.equal((await client.listBackups({ owner: 'carol', meta_id: 'm-ws-3' })).backups.length, 1);

      for (const id of ['ws-1', 'ws-2']) await client.disposeWorkspace(id, { backup: true });
      await client.initWorkspace({ id: 'ws-1-again', metadata: { owner: 'carol', meta_id: 'm-ws-1' }, initializer: { backup: {} } });
      assert.equal(readFileSync(path.join(workingArea, 'ws-1-again', 'notes.txt'), 'utf8'), 'work in ws-1\n');
      await client.disposeWorkspace('ws-1-again');
      await client.disposeWorkspace('ws-half');
      assert.deepEqual((await client.listWorkspaces()).workspaces, []);
    } finally {
      client.close();
      assert.equal(await second.stop(), 0);
    }
  });
});
