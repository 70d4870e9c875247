/**
 * Probe findings #5 (state file collision: an id that names another workspace's state file) and #6 (failure cleanup
 * deleting what the call did not create). These restart the daemon, so each test has its own.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { meta, startTestDaemon, stateFile } from '../kit/security-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

/** The error of a call that must fail, without asserting anything yet (the files are checked first). */
const failure = (promise: Promise<unknown>): Promise<ServiceError | undefined> => promise.then(() => undefined, (error: ServiceError) => error);
const describeError = (error: ServiceError | undefined) => (error ? `${status[error.code]}: ${error.details}` : 'succeeded');

describe('security: state files and failure cleanup (#5, #6)', () => {
  it('#5 state file collision: a failing init of id "v2.workspace.json" leaves v2 intact, also across a SIGKILL restart', async () => {
    const wsd = await startTestDaemon(tempDir('wsd-sec-collide-'));
    try {
      await wsd.client.initWorkspace({ id: 'v2', metadata: meta('m-v2'), initializer: { empty: {} } });
      writeFileSync(path.join(wsd.folder('v2'), 'work.txt'), 'v2 user work\n');
      const v2State = readFileSync(stateFile(wsd.dataDir, 'v2'), 'utf8');

      const collide = await failure(
        wsd.client.initWorkspace({ id: 'v2.workspace.json', metadata: meta('m-collide'), initializer: { snapshot: { snapshot: 'mallory/workspaces/none/snapshots/20260101T000000000Z-deadbeef.tar.zst' } } }),
      );
      assert.equal(existsSync(stateFile(wsd.dataDir, 'v2')), true, `HOLE OPEN: the failed init (${describeError(collide)}) deleted v2's state file`);
      assert.equal(readFileSync(stateFile(wsd.dataDir, 'v2'), 'utf8'), v2State, "v2's state file changed");
      assert.equal(collide?.code, status.NOT_FOUND, `init of v2.workspace.json: ${describeError(collide)}`);

      await wsd.stop('SIGKILL');
      await wsd.restart();
      assert.equal(await wsd.client.isWorkspaceExists('v2'), true, 'HOLE OPEN: after a restart v2 is unknown');
      await wsd.client.waitForInit('v2');
      assert.equal((await wsd.client.describeWorkspace('v2')).summary?.state, 'WORKSPACE_STATE_READY');
      assert.equal(readFileSync(path.join(wsd.folder('v2'), 'work.txt'), 'utf8'), 'v2 user work\n');
      await wsd.client.disposeWorkspace('v2');
    } finally {
      await wsd.stop();
    }
  });

  it('#6 a corrupt state file blocks its id: InitWorkspace is FAILED_PRECONDITION naming the state file; the folder, its files and the state file stay', async () => {
    const wsd = await startTestDaemon(tempDir('wsd-sec-corrupt-'));
    try {
      await wsd.client.initWorkspace({ id: 'c1', metadata: meta('m-c1'), initializer: { empty: {} } });
      writeFileSync(path.join(wsd.folder('c1'), 'precious.txt'), 'user files\n');
      await wsd.stop();
      const corrupt = '{"version": 1, "id": "c1", "state": "rea';
      writeFileSync(stateFile(wsd.dataDir, 'c1'), corrupt);
      await wsd.restart();

      const intact = (when: string) => {
        assert.equal(existsSync(path.join(wsd.folder('c1'), 'precious.txt')), true, `HOLE OPEN: ${when} deleted the folder of the workspace with the unreadable state file`);
        assert.equal(readFileSync(path.join(wsd.folder('c1'), 'precious.txt'), 'utf8'), 'user files\n');
        assert.equal(existsSync(stateFile(wsd.dataDir, 'c1')), true, `HOLE OPEN: ${when} deleted the unreadable state file`);
        assert.equal(readFileSync(stateFile(wsd.dataDir, 'c1'), 'utf8'), corrupt, `${when} rewrote the unreadable state file`);
      };
      const init = await failure(wsd.client.initWorkspace({ id: 'c1', metadata: meta('m-other'), initializer: { empty: {} } }));
      intact(`InitWorkspace (${describeError(init)})`);
      assert.equal(init?.code, status.FAILED_PRECONDITION, `InitWorkspace: ${describeError(init)}`);
      assert.match(init!.details, /state file/);

      const dispose = await failure(wsd.client.disposeWorkspace('c1'));
      intact(`DisposeWorkspace (${describeError(dispose)})`);
      assert.equal(dispose?.code, status.FAILED_PRECONDITION, `DisposeWorkspace: ${describeError(dispose)}`);
    } finally {
      await wsd.stop();
    }
  });

  it('#6 a folder put into the working area by hand (no state file): InitWorkspace is ALREADY_EXISTS and the folder and its files stay', async () => {
    const wsd = await startTestDaemon(tempDir('wsd-sec-byhand-'));
    try {
      mkdirSync(wsd.folder('byhand'), { recursive: true });
      writeFileSync(path.join(wsd.folder('byhand'), 'keep.txt'), 'not wsd\'s\n');
      const init = await failure(wsd.client.initWorkspace({ id: 'byhand', metadata: meta('m-byhand'), initializer: { empty: {} } }));
      assert.equal(existsSync(path.join(wsd.folder('byhand'), 'keep.txt')), true, `HOLE OPEN: the failed init (${describeError(init)}) deleted a folder it did not create`);
      assert.equal(init?.code, status.ALREADY_EXISTS, `InitWorkspace: ${describeError(init)}`);
      // A failing initializer on top of it changes nothing either.
      const again = await failure(wsd.client.initWorkspace({ id: 'byhand', metadata: meta('m-byhand'), initializer: { backup: {} } }));
      assert.equal(existsSync(path.join(wsd.folder('byhand'), 'keep.txt')), true, `HOLE OPEN: the second failed init (${describeError(again)}) deleted the folder`);
      assert.notEqual(again, undefined);
    } finally {
      await wsd.stop();
    }
  });
});
