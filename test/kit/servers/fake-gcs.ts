import { randomBytes } from 'node:crypto';
import { tempDir } from '../temp-dir.js';
import { answers, cachedTool, startServer, type TestServer } from './server-process.js';

/** The fake-gcs-server release `scripts/install-test-tools.sh` builds. */
export const fakeGcsVersion = 'v1.56.1';

export interface StartFakeGcsOptions {
  /**
   * `filesystem` (default) keeps objects in `dataDir`, so a restart on the same port and folder sees them.
   * `memory` keeps them in the process. The filesystem backend stores object `a/b` as the file `a/b`, so an object
   * `a` and an object `a/b` cannot both exist there (HTTP 500); the memory backend has no such limit.
   */
  backend?: 'filesystem' | 'memory';
  /** Folder of the filesystem backend (default: a fresh temp folder); pass the old one to restart. */
  dataDir?: string;
  /** Port (default: a free one); pass the old one to restart after `server.kill()`. */
  port?: number;
  /** Bucket to create (default: a random name); `createBucket: false` leaves the server without it. */
  bucket?: string;
  createBucket?: boolean;
}

export interface FakeGcs {
  server: TestServer;
  pluginId: 'gcs';
  /** `storage: { plugin: 'gcs', gcs: storageConfig }` reaches the bucket (anonymously: the fake checks no credentials). */
  storageConfig: { bucket: string; endpoint: string; anonymous: true; projectId: string };
  bucket: string;
  dataDir: string;
  backend: 'filesystem' | 'memory';
}

/**
 * fake-gcs-server on 127.0.0.1 with one bucket, for the gcs plugin's tests and end-to-end runs. Ready when it lists
 * buckets (`GET /storage/v1/b`).
 */
export async function startFakeGcs(options: StartFakeGcsOptions = {}): Promise<FakeGcs> {
  const backend = options.backend ?? 'filesystem';
  const dataDir = options.dataDir ?? tempDir('wsd-fake-gcs-');
  const bucket = options.bucket ?? `wsd-${randomBytes(4).toString('hex')}`;
  const server = await startServer({
    name: `fake-gcs-server ${fakeGcsVersion}`,
    command: cachedTool('fake-gcs-server', fakeGcsVersion),
    args: (port) => [
      '-scheme', 'http',
      '-host', '127.0.0.1',
      '-port', String(port),
      '-backend', backend,
      ...(backend === 'filesystem' ? ['-filesystem-root', dataDir] : []),
      '-log-level', 'warn',
    ],
    ready: (endpoint) => answers(`${endpoint}/storage/v1/b`),
    ...(options.port ? { port: options.port } : {}),
  });
  if (options.createBucket !== false) {
    try {
      const response = await fetch(`${server.endpoint}/storage/v1/b?project=wsd-test`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: bucket }),
      });
      const text = await response.text();
      if (!response.ok && response.status !== 409) throw new Error(`HTTP ${response.status}: ${text}`);
    } catch (error) {
      await server.stop();
      throw new Error(`fake-gcs-server could not create bucket ${bucket}: ${(error as Error).message}`);
    }
  }
  return {
    server,
    pluginId: 'gcs',
    storageConfig: { bucket, endpoint: server.endpoint, anonymous: true, projectId: 'wsd-test' },
    bucket,
    dataDir,
    backend,
  };
}
