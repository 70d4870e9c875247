import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { WsdClient } from '../../core/api/client.js';
import { startAzurite } from '../kit/servers/azurite.js';
import { startFakeGcs } from '../kit/servers/fake-gcs.js';
import { startMinio } from '../kit/servers/minio.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';
import { firstDifference, treeManifest } from '../kit/tree-hash.js';

/**
 * What object storage is for, per backend, through real daemons: a workspace survives backup → dispose → init from
 * backup byte for byte, and a snapshot taken by one daemon restores on a second daemon process (its own data folder)
 * that shares only the storage — what lets wsd run on a cluster. Each backend runs against its real server on
 * 127.0.0.1, started here; a server that cannot start fails the test.
 */
interface Backend {
  name: string;
  /** Starts the server (if any) and returns the `storage:` section of a daemon using it. */
  start(): Promise<{ storage: Record<string, unknown>; stop(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'local',
    async start() {
      // Two daemons share a folder, as two nodes would share a network file system.
      const root = tempDir('wsd-shared-storage-');
      return { storage: { plugin: 'local', local: { root } }, stop: async () => {} };
    },
  },
  {
    name: 'azure',
    async start() {
      const azurite = await startAzurite();
      return { storage: { plugin: 'azure', azure: azurite.storageConfig }, stop: () => azurite.server.stop() };
    },
  },
  {
    name: 'gcs',
    async start() {
      const gcs = await startFakeGcs();
      return { storage: { plugin: 'gcs', gcs: gcs.storageConfig }, stop: () => gcs.server.stop() };
    },
  },
  {
    name: 's3',
    async start() {
      const minio = await startMinio();
      return { storage: { plugin: 's3', s3: minio.storageConfig }, stop: () => minio.server.stop() };
    },
  },
];

const withoutMarker = (dir: string) => treeManifest(dir, { ignore: (p) => p === '.gitpod' || p.startsWith('.gitpod/') });

function writeTree(root: string, seed: string): void {
  mkdirSync(path.join(root, 'src', 'deep'), { recursive: true });
  writeFileSync(path.join(root, 'README.md'), `# ${seed}\n`);
  writeFileSync(path.join(root, 'src', 'deep', 'data.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, seed));
  writeFileSync(path.join(root, 'ünïcødé 文件.txt'), seed);
}

for (const backend of backends) {
  describe(`storage/${backend.name} end to end`, () => {
    let started: Awaited<ReturnType<Backend['start']>>;
    const daemons: DaemonProcess[] = [];
    const clients: WsdClient[] = [];
    before(async () => {
      started = await backend.start();
    });
    after(async () => {
      clients.forEach((c) => c.close());
      await Promise.all(daemons.map((d) => d.stop()));
      await started?.stop();
    });

    const daemon = async () => {
      const dir = tempDir(`wsd-e2e-${backend.name}-`);
      const extra = stringify({ storage: started.storage });
      const process = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir, extra)] });
      daemons.push(process);
      const client = new WsdClient({ address: process.grpcAddress });
      clients.push(client);
      return { client, workspace: (id: string) => path.join(dir, 'data', 'workspaces', id) };
    };

    it('backup → dispose → init from backup gives the same content, and a snapshot restores on a second daemon', async () => {
      const first = await daemon();
      const metadata = { owner: 'olga', meta_id: `meta-${backend.name}` };
      await first.client.initWorkspace({ id: 'ws-a', metadata, initializer: { empty: {} } });
      writeTree(first.workspace('ws-a'), 'first');
      const original = await withoutMarker(first.workspace('ws-a'));
      const snapshot = await first.client.takeSnapshot('ws-a');

      await first.client.disposeWorkspace('ws-a', { backup: true });
      await first.client.initWorkspace({ id: 'ws-a', metadata, initializer: { backup: {} } });
      assert.equal(firstDifference(await withoutMarker(first.workspace('ws-a')), original), undefined, 'restored from the backup');

      const second = await daemon();
      await second.client.initWorkspace({ id: 'ws-b', metadata: { owner: 'olga', meta_id: 'other' }, initializer: { snapshot: { snapshot } } });
      assert.equal(firstDifference(await withoutMarker(second.workspace('ws-b')), original), undefined, 'the snapshot restored on another daemon');
      assert.equal(readFileSync(path.join(second.workspace('ws-b'), 'ünïcødé 文件.txt'), 'utf8'), 'first');
    });
  });
}
