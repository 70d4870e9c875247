// Every built-in initializer runs the ContentInitializer conformance suite against real parts.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before } from 'node:test';
import { BackupStore } from '../../core/content/backup-store.js';
import { silentLogger } from '../../core/observability/logger.js';
import { BackupContentInitializer } from '../../plugins/initializer/backup/backup-content-initializer.js';
import { CompositeContentInitializer } from '../../plugins/initializer/composite/composite-content-initializer.js';
import { DownloadContentInitializer } from '../../plugins/initializer/download/download-content-initializer.js';
import { EmptyContentInitializer } from '../../plugins/initializer/empty/empty-content-initializer.js';
import { GitContentInitializer } from '../../plugins/initializer/git/git-content-initializer.js';
import { PrebuildContentInitializer } from '../../plugins/initializer/prebuild/prebuild-content-initializer.js';
import { SnapshotContentInitializer } from '../../plugins/initializer/snapshot/snapshot-content-initializer.js';
import { gitTestPolicy, makeRepos, type TestRepos } from '../kit/git-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';
import { describeContentInitializerConformance } from './content-initializer.js';

let repos: TestRepos;
let fileServer: string;
const server = createServer((_req, res) => res.end('downloaded'));
before(async () => {
  repos = makeRepos(tempDir('wsd-conformance-repos-'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fileServer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const git = () => new GitContentInitializer({ retryTimeoutMs: 2000, initialRetryDelayMs: 100, policy: gitTestPolicy });

/** Puts an archive of a small tree into the run's storage as a backup or snapshot; returns its manifest. */
async function storeArchive(options: { storage: ConstructorParameters<typeof BackupStore>[0]; workspace: { owner: string; metaId: string } }, kind: 'backup' | 'snapshot') {
  const source = tempDir('wsd-conformance-src-');
  writeFileSync(path.join(source, 'hello.txt'), 'hello\n');
  return new BackupStore(options.storage, silentLogger).write({ ...options.workspace, instanceId: 'src' }, source, kind);
}

describeContentInitializerConformance('empty', { create: () => new EmptyContentInitializer(), valid: async () => ({ spec: {} }) });

describeContentInitializerConformance('git', {
  abortable: true,
  create: git,
  valid: async () => ({ spec: { remote_uri: repos.url('project'), checkout_location: 'src' } }),
  invalid: { remote_uri: 'file:///x', checkout_location: '../outside' },
});

describeContentInitializerConformance('download', {
  abortable: true,
  // The file server is on 127.0.0.1, which the initializer refuses unless allowed (loopback is denied by default).
  create: () => new DownloadContentInitializer({ attempts: 2, initialRetryDelayMs: 10, allowedNetworks: ['127.0.0.1/32'] }),
  valid: async () => ({ spec: { files: [{ url: `${fileServer}/f`, file_path: 'f.txt', digest: `sha256:${createHash('sha256').update('downloaded').digest('hex')}` }] } }),
  invalid: { target_location: '../../etc', files: [] },
});

describeContentInitializerConformance('backup', {
  abortable: true,
  create: () => new BackupContentInitializer(),
  valid: async () => ({ spec: {}, prepare: async (o) => void (await storeArchive(o, 'backup')) }),
});

let snapshotName = '';
describeContentInitializerConformance('snapshot', {
  abortable: true,
  create: () => new SnapshotContentInitializer(),
  valid: async () => ({
    spec: {
      get snapshot() {
        return snapshotName;
      },
    },
    prepare: async (o) => void (snapshotName = (await storeArchive(o, 'snapshot')).object),
  }),
  invalid: { snapshot: 'not/a/snapshot/name' },
});

describeContentInitializerConformance('composite', {
  abortable: true,
  create: () => new CompositeContentInitializer(),
  helpers: () => [new EmptyContentInitializer(), git()],
  valid: async () => ({ spec: { initializer: [{ kind: 'empty', spec: {} }, { kind: 'git', spec: { remote_uri: repos.url('project'), checkout_location: 'a' } }] } }),
  invalid: { initializer: [{ kind: 'git', spec: { remote_uri: 'file:///x', checkout_location: '/abs' } }] },
});

describeContentInitializerConformance('prebuild', {
  abortable: true,
  create: () => new PrebuildContentInitializer({ policy: gitTestPolicy }),
  helpers: () => [git()],
  valid: async () => ({ spec: { prebuild: { snapshot: 'owner/workspaces/meta/snapshots/20260101T000000000Z-00000000.tar.zst' }, git: [{ remote_uri: repos.url('project') }] } }),
  invalid: { prebuild: { snapshot: 'owner/workspaces/meta/snapshots/20260101T000000000Z-00000000.tar.zst' }, git: [{ remote_uri: 'file:///x', checkout_location: '../x' }] },
});
