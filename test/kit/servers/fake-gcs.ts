import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tempDir } from '../temp-dir.js';
import { cachedTool, startServer, type TestServer } from './server-process.js';

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
  /** Serve https with this certificate and key (PEM files); `caFile` is what clients must trust. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export interface FakeGcs {
  server: TestServer;
  pluginId: 'gcs';
  /**
   * `storage: { plugin: 'gcs', gcs: storageConfig }` reaches the bucket (anonymously: the fake checks no
   * credentials). Its `endpoint` is https with `tls` (`server.endpoint` always reads http).
   */
  storageConfig: { bucket: string; endpoint: string; anonymous: true; projectId: string; caFile?: string };
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
  const { tls } = options;
  const ca = tls ? readFileSync(tls.caFile, 'utf8') : undefined;
  const server = await startServer({
    name: `fake-gcs-server ${fakeGcsVersion}`,
    command: cachedTool('fake-gcs-server', fakeGcsVersion),
    args: (port) => [
      '-scheme', tls ? 'https' : 'http',
      ...(tls ? ['-cert-location', tls.certFile, '-private-key-location', tls.keyFile] : []),
      '-host', '127.0.0.1',
      '-port', String(port),
      '-backend', backend,
      ...(backend === 'filesystem' ? ['-filesystem-root', dataDir] : []),
      '-log-level', 'warn',
    ],
    ready: async (endpoint) => (await call(endpoint.replace(/^http:/, tls ? 'https:' : 'http:'), 'GET', '/storage/v1/b', undefined, ca)).status === 200,
    ...(options.port ? { port: options.port } : {}),
  });
  const endpoint = server.endpoint.replace(/^http:/, tls ? 'https:' : 'http:');
  if (options.createBucket !== false) {
    try {
      const answer = await call(endpoint, 'POST', '/storage/v1/b?project=wsd-test', JSON.stringify({ name: bucket }), ca);
      if (answer.status !== 200 && answer.status !== 409) throw new Error(`HTTP ${answer.status}: ${answer.text}`);
    } catch (error) {
      await server.stop();
      throw new Error(`fake-gcs-server could not create bucket ${bucket}: ${(error as Error).message}`);
    }
  }
  return {
    server,
    pluginId: 'gcs',
    storageConfig: { bucket, endpoint, anonymous: true, projectId: 'wsd-test', ...(tls ? { caFile: tls.caFile } : {}) },
    bucket,
    dataDir,
    backend,
  };
}

/** One request to the server (http or https with the test CA), bounded in time. */
function call(endpoint: string, method: string, path: string, body: string | undefined, ca: string | undefined): Promise<{ status: number; text: string }> {
  const url = new URL(path, endpoint);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, ca, headers: body ? { 'content-type': 'application/json' } : {}, timeout: 2000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', reject);
    req.end(body);
  });
}
