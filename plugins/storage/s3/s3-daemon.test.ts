import assert from 'node:assert/strict';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { WsdClient } from '../../../core/api/client.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../../../test/kit/daemon-process.js';
import { startMinio } from '../../../test/kit/servers/minio.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { firstDifference, treeManifest } from '../../../test/kit/tree-hash.js';
import { patternStream } from '../../../test/kit/streams.js';
import { pipeline } from 'node:stream/promises';

const withoutMarker = (dir: string) => treeManifest(dir, { ignore: (p) => p === '.gitpod' || p.startsWith('.gitpod/') });

/**
 * Two daemon processes with separate data folders sharing one bucket, as two nodes would: a backup made on one
 * restores on the other, and so does a snapshot. A smoke test of storage/s3 in the real daemon; the shared
 * end-to-end test over every backend builds on `startMinio()` the same way.
 */
describe('storage/s3 in the daemon', { timeout: 300_000 }, () => {
  it('backs up on one daemon and restores on another sharing the bucket, backups and snapshots alike', async () => {
    const minio = await startMinio();
    const storage = `${stringify({ storage: { plugin: 's3', s3: { ...minio.storageConfig, partSize: '5MiB' } } })}`;
    const daemons: DaemonProcess[] = [];
    const clients: WsdClient[] = [];
    const start = async () => {
      const dir = tempDir('wsd-s3-node-');
      const daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir, storage)] });
      daemons.push(daemon);
      const client = new WsdClient({ address: daemon.grpcAddress });
      clients.push(client);
      return { daemon, client, folderOf: (id: string) => path.join(dir, 'data', 'workspaces', id) };
    };
    try {
      const first = await start();
      const second = await start();

      await first.client.initWorkspace({ id: 'ws-a', metadata: { owner: 'olga', meta_id: 'shared' }, initializer: { empty: {} } });
      const a = first.folderOf('ws-a');
      mkdirSync(path.join(a, 'src', 'ünï'), { recursive: true });
      writeFileSync(path.join(a, 'src', 'ünï', 'main.ts'), 'export const answer = 42;\n');
      // Incompressible, so the archive needs several multipart parts.
      await pipeline(patternStream(12 * 1024 * 1024, 8), createWriteStream(path.join(a, 'blob.bin')));
      const original = await withoutMarker(a);

      const snapshot = await first.client.takeSnapshot('ws-a');
      await first.client.disposeWorkspace('ws-a', { backup: true });

      await second.client.initWorkspace({ id: 'ws-b', metadata: { owner: 'olga', meta_id: 'shared' }, initializer: { backup: {} } });
      assert.equal(firstDifference(await withoutMarker(second.folderOf('ws-b')), original), undefined, 'the backup restores on the other node');

      await second.client.initWorkspace({ id: 'ws-c', metadata: { owner: 'olga', meta_id: 'other' }, initializer: { snapshot: { snapshot } } });
      assert.equal(firstDifference(await withoutMarker(second.folderOf('ws-c')), original), undefined, 'the snapshot restores on the other node');

      const keys = (await minio.client().listObjectsV2Query(minio.storageConfig.bucket, 'olga/', '', '', 1000, '')).objects.map((o) => o.name);
      assert.ok(keys.some((k) => /^olga\/workspaces\/shared\/backups\/latest\.json$/.test(k!)), `keys: ${keys.join(', ')}`);
    } finally {
      for (const client of clients) client.close();
      for (const daemon of daemons) await daemon.stop();
      await minio.server.stop();
    }
  });
});
