import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../temp-dir.js';
import { answers, cachedTool, freePort, startServer, type TestServer } from './server-process.js';

export interface StartedVersitygw {
  server: TestServer;
  pluginId: 's3';
  /** `storage.s3` of a daemon using this server; the bucket is created by the plugin (`createBucket: true`). */
  storageConfig: {
    endpoint: string;
    region: string;
    bucket: string;
    createBucket: true;
    credentials: { source: 'files'; accessKeyIdFile: string; secretAccessKeyFile: string };
  };
  dataDir: string;
}

/**
 * Versity's S3 gateway on a posix folder, on 127.0.0.1: the second S3 server of storage/s3's tests, because it
 * evaluates conditional writes on CompleteMultipartUpload only, as AWS S3 does (MinIO checks them on the initiating
 * request as well). `WSD_VERSITYGW_BIN` names a binary built elsewhere (before install-test-tools has run).
 */
export async function startVersitygw(options: { bucket?: string } = {}): Promise<StartedVersitygw> {
  const binary = process.env.WSD_VERSITYGW_BIN || cachedTool('versitygw');
  const dataDir = tempDir('wsd-versitygw-data-');
  const accessKey = `wsd-${randomBytes(4).toString('hex')}`;
  const secretKey = randomBytes(16).toString('hex');
  const port = await freePort();
  const server = await startServer({
    name: 'versitygw',
    command: binary,
    port,
    args: (p) => ['--port', `127.0.0.1:${p}`, '--health', '/health', '--quiet', 'posix', dataDir],
    env: { ROOT_ACCESS_KEY_ID: accessKey, ROOT_SECRET_ACCESS_KEY: secretKey },
    ready: (endpoint) => answers(`${endpoint}/health`),
  });
  const secrets = tempDir('wsd-versitygw-credentials-');
  const accessKeyIdFile = path.join(secrets, 'access-key-id');
  const secretAccessKeyFile = path.join(secrets, 'secret-access-key');
  writeFileSync(accessKeyIdFile, accessKey, { mode: 0o600 });
  writeFileSync(secretAccessKeyFile, secretKey, { mode: 0o600 });
  return {
    server,
    pluginId: 's3',
    storageConfig: {
      endpoint: server.endpoint,
      region: 'us-east-1',
      bucket: options.bucket ?? 'wsd-test',
      createBucket: true,
      credentials: { source: 'files', accessKeyIdFile, secretAccessKeyFile },
    },
    dataDir,
  };
}
