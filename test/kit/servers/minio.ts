import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Client } from 'minio';
import { tempDir } from '../temp-dir.js';
import { cachedTool, freePort, startServer, type TestServer } from './server-process.js';

export interface StartMinioOptions {
  /** Data folder; a fresh temp folder by default. Pass the one of a killed server to restart it on its data. */
  dataDir?: string;
  /** Port; a free one by default. */
  port?: number;
  /** Bucket to create (default `wsd-test`); `false` creates none. */
  bucket?: string | false;
  /** Root credentials; random by default. */
  rootUser?: string;
  rootPassword?: string;
  /** Serve https with this certificate (for 127.0.0.1) and key; `caFile` goes into `storageConfig`. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export interface StartedMinio {
  server: TestServer;
  pluginId: 's3';
  /** `storage.s3` of a daemon using this server: endpoint, bucket and the credentials as files in a temp folder. */
  storageConfig: {
    endpoint: string;
    region: string;
    bucket: string;
    credentials: { source: 'files'; accessKeyIdFile: string; secretAccessKeyFile: string };
    caFile?: string;
  };
  dataDir: string;
  /** The root credentials, for tests that drive the server with the SDK directly. */
  rootUser: string;
  rootPassword: string;
  /** A minio client on this server as root (its own retries off). */
  client(): Client;
  /** Starts the server again on the same port, data and credentials (after `server.kill()`). */
  restart(): Promise<TestServer>;
}

/**
 * A MinIO server on 127.0.0.1 with one bucket, for storage/s3's tests and the end-to-end tests of every backend
 * (`storage: { plugin: 's3', s3: storageConfig }`). Fails with a clear message when MinIO is not installed.
 */
export async function startMinio(options: StartMinioOptions = {}): Promise<StartedMinio> {
  // The build scripts/install-test-tools.sh pins (a pseudo-version: MinIO tags no Go module releases).
  const binary = cachedTool('minio');
  const dataDir = options.dataDir ?? tempDir('wsd-minio-data-');
  const rootUser = options.rootUser ?? `wsd-${randomBytes(4).toString('hex')}`;
  const rootPassword = options.rootPassword ?? randomBytes(16).toString('hex');
  const bucket = options.bucket === undefined ? 'wsd-test' : options.bucket;
  const port = options.port ?? (await freePort());

  const consolePort = await freePort();
  const tls = options.tls;
  const certsDir = tempDir('wsd-minio-certs-');
  if (tls) {
    // MinIO serves https when its certs folder holds public.crt and private.key.
    copyFileSync(tls.certFile, path.join(certsDir, 'public.crt'));
    copyFileSync(tls.keyFile, path.join(certsDir, 'private.key'));
    mkdirSync(path.join(certsDir, 'CAs'), { recursive: true });
  }
  const scheme = tls ? 'https' : 'http';
  const launch = async () =>
    startServer({
      name: 'MinIO',
      command: binary,
      port,
      args: (p) => ['server', dataDir, '--address', `127.0.0.1:${p}`, '--console-address', `127.0.0.1:${consolePort}`, '--certs-dir', certsDir, '--quiet'],
      env: { MINIO_ROOT_USER: rootUser, MINIO_ROOT_PASSWORD: rootPassword, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off' },
      ready: () => answersReady(`${scheme}://127.0.0.1:${port}/minio/health/ready`, tls?.caFile),
    });
  const server = await launch();

  const client = () =>
    new Client({
      endPoint: '127.0.0.1',
      port,
      useSSL: Boolean(tls),
      accessKey: rootUser,
      secretKey: rootPassword,
      region: 'us-east-1',
      retryOptions: { disableRetry: true },
      ...(tls ? { transportAgent: new https.Agent({ ca: readFileSync(tls.caFile) }) } : {}),
    });
  if (bucket) {
    await createBucket(client, bucket, `MinIO on port ${port}`).catch(async (error: unknown) => {
      await server.stop();
      throw error;
    });
  }

  const secrets = tempDir('wsd-minio-credentials-');
  const accessKeyIdFile = path.join(secrets, 'access-key-id');
  const secretAccessKeyFile = path.join(secrets, 'secret-access-key');
  writeFileSync(accessKeyIdFile, `${rootUser}\n`, { mode: 0o600 });
  writeFileSync(secretAccessKeyFile, `${rootPassword}\n`, { mode: 0o600 });

  return {
    server,
    pluginId: 's3',
    storageConfig: {
      endpoint: `${scheme}://127.0.0.1:${port}`,
      region: 'us-east-1',
      bucket: bucket || 'wsd-test',
      credentials: { source: 'files', accessKeyIdFile, secretAccessKeyFile },
      ...(tls ? { caFile: tls.caFile } : {}),
    },
    dataDir,
    rootUser,
    rootPassword,
    client,
    restart: launch,
  };
}

/**
 * Whether MinIO answers its readiness probe with 200. Every way the request can end settles the probe, and a timer of
 * its own bounds it: a probe that never settles stalls startServer's loop (its deadline is checked between probes).
 * Twice here a test hung for good right after MinIO became ready, with no socket open and the fetch-based probe the
 * likely suspect; this one cannot.
 */
async function answersReady(url: string, caFile: string | undefined): Promise<boolean> {
  return await new Promise((resolve) => {
    const get = caFile ? https.get.bind(https) : http.get.bind(http);
    const req = get(url, { ...(caFile ? { ca: readFileSync(caFile) } : {}), agent: false }, (response) => {
      response.resume();
      clearTimeout(timer);
      resolve(response.statusCode === 200);
    });
    const timer = setTimeout(() => req.destroy(new Error('no answer within 2 s')), 2000);
    req.on('error', () => resolve(false));
    req.on('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Creates the bucket, trying again for up to 30 s: a MinIO that has just answered its readiness probe can still
 * refuse requests for a moment (503 while it initializes), and the SDK sets no timeout on its requests.
 */
async function createBucket(client: () => Client, bucket: string, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await withDeadline(
        (async () => {
          if (!(await client().bucketExists(bucket))) await client().makeBucket(bucket, 'us-east-1');
        })(),
        10_000,
      );
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: cannot create bucket ${bucket}: ${(error as Error).message}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** `promise`, or a rejection once `ms` pass. */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
