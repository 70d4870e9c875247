import assert from 'node:assert/strict';
import { after } from 'node:test';
import { describeStorageBackendConformance } from '../../../test/conformance/storage-backend.js';
import { guardLoopback } from '../../../test/kit/loopback-guard.js';
import { startFakeGcs } from '../../../test/kit/servers/fake-gcs.js';
import { GcsStorageBackend } from './gcs-storage-backend.js';

const guard = guardLoopback();
after(() => assert.deepEqual(guard.violations, [], 'no connection left 127.0.0.1'));

// fake-gcs-server's memory backend: its filesystem backend cannot hold an object `a` next to an object `a/b` (it
// stores `a/b` as a file in a folder `a`), which the suite checks. The filesystem backend is covered by the
// restart test (gcs-faults.test.ts).
describeStorageBackendConformance('gcs (fake-gcs-server, default 32 MiB chunks)', async () => {
  const gcs = await startFakeGcs({ backend: 'memory' });
  return { backend: new GcsStorageBackend(gcs.storageConfig), teardown: () => gcs.server.stop() };
});
