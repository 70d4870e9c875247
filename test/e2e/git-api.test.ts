import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient } from '../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig } from '../kit/daemon-process.js';
import { makeRepos, sh, startGitHttpServer } from '../kit/git-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

describe('git initializer over the API', () => {
  it('clones with basic auth, answers a wrong password with FAILED_PRECONDITION quickly, and keeps passwords out of logs and state', async () => {
    const repos = makeRepos(tempDir('wsd-git-api-repos-'));
    const http = await startGitHttpServer(repos.root, { user: 'hal', password: 'correct-horse-77' });
    const dir = tempDir('wsd-git-api-');
    const daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir, 'log:\n  level: debug\n')] });
    const client = new WsdClient({ address: daemon.grpcAddress });
    const workingArea = path.join(dir, 'data', 'workspaces');
    try {
      const git = (password: string) => ({ git: { remote_uri: http.url('project'), config: { authentication: 'BASIC_AUTH' as const, auth_user: 'hal', auth_password: password } } });
      await client.initWorkspace({ id: 'g1', metadata: { owner: 'hal', meta_id: 'g' }, initializer: git('correct-horse-77') });
      assert.equal(sh(path.join(workingArea, 'g1'), 'rev-parse', 'HEAD'), repos.main.tip);

      const started = Date.now();
      await assert.rejects(client.initWorkspace({ id: 'g2', metadata: { owner: 'hal', meta_id: 'g2' }, initializer: git('wrong-battery-13') }), (e: ServiceError) => {
        assert.equal(e.code, status.FAILED_PRECONDITION);
        assert.match(e.details, /access denied/);
        assert.ok(!e.details.includes('wrong-battery-13'));
        return true;
      });
      assert.ok(Date.now() - started < 10_000, 'no retries for access denied');

      const stateDir = path.join(workingArea, '..', 'state');
      const stateFiles = readdirSync(stateDir).filter((n) => n.endsWith('.json')).map((n) => readFileSync(path.join(stateDir, n), 'utf8'));
      assert.equal(stateFiles.length, 2);
      for (const text of [...stateFiles, JSON.stringify(daemon.logs), daemon.stderr()]) {
        assert.ok(!text.includes('correct-horse-77') && !text.includes('wrong-battery-13'), 'no password in state files or logs');
      }
      await client.disposeWorkspace('g1');
      await client.disposeWorkspace('g2');
    } finally {
      client.close();
      await daemon.stop();
      await http.close();
    }
  });
});
