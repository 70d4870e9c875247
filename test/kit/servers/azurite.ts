import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { tempDir } from '../temp-dir.js';
import { npmBin, startServer, type TestServer } from './server-process.js';

/** Azurite's development account and its published, well-known key (not a secret). */
export const azuriteAccount = {
  name: 'devstoreaccount1',
  key: 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
} as const;

export interface StartAzuriteOptions {
  /** Port to listen on (a restart after `server.kill()` passes the old one). Default: a free one. */
  port?: number;
  /** Azurite's data folder (a restart passes the old one to keep the blobs). Default: a new temp folder. */
  dataDir?: string;
  /** Serve HTTPS with this PEM certificate and key (see `makeTestPki`). */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** Container to create and name in `storageConfig`; `false` creates none. Default: a fresh random name. */
  container?: string | false;
}

export interface AzuriteServer {
  server: TestServer;
  pluginId: 'azure';
  /**
   * The `storage.azure` config section for this server and container, as a config file would hold it (the account
   * key in a file in a temp folder): `storage: { plugin: 'azure', azure: storageConfig }`.
   */
  storageConfig: {
    accountName: string;
    endpoint: string;
    container: string;
    credentials: { accountKeyFile: string };
    caFile?: string;
  };
  /** The blob service URL of the development account (path-style). */
  accountUrl: string;
  dataDir: string;
  /** The SDK client of the account, to look at the server without the plugin. */
  service: BlobServiceClient;
}

/**
 * Starts Azurite's blob service (`npmBin('azurite-blob')`, the npm devDependency) on 127.0.0.1 with its data in a
 * temp folder, and creates a container. Fails with Azurite's output when it does not come up.
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteServer> {
  const dataDir = options.dataDir ?? tempDir('wsd-azurite-');
  const command = npmBin('azurite-blob');
  const tls = options.tls;
  const ca = tls ? readFileSync(tls.caFile) : undefined;
  const server = await startServer({
    name: 'Azurite',
    command,
    port: options.port,
    // --silent: no access log on stdout; nothing is written outside --location (checked: not into the cwd).
    args: (port) => [
      '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dataDir,
      '--skipApiVersionCheck', '--disableTelemetry', '--silent',
      ...(tls ? ['--cert', tls.certFile, '--key', tls.keyFile] : []),
    ],
    ready: (endpoint) => (tls ? answersHttps(endpoint.replace('http:', 'https:'), ca!) : answersHttp(endpoint)),
  });
  const base = tls ? server.endpoint.replace('http:', 'https:') : server.endpoint;
  const accountUrl = `${base}/${azuriteAccount.name}`;
  const keyFile = path.join(tempDir('wsd-azurite-key-'), 'account-key');
  writeFileSync(keyFile, `${azuriteAccount.key}\n`, { mode: 0o600 });
  const service = new BlobServiceClient(accountUrl, new StorageSharedKeyCredential(azuriteAccount.name, azuriteAccount.key), {
    retryOptions: { maxTries: 1 },
    ...(ca ? { tlsOptions: { ca: [ca.toString('utf8')] } } : {}),
  } as object);
  const container = options.container === undefined ? `wsd-test-${randomBytes(5).toString('hex')}` : options.container;
  if (container !== false) {
    await service
      .getContainerClient(container)
      .createIfNotExists()
      .catch(async (error: unknown) => {
        await server.stop(); // a start that fails leaves no server behind
        throw error;
      });
  }
  return {
    server,
    pluginId: 'azure',
    storageConfig: {
      accountName: azuriteAccount.name,
      endpoint: accountUrl,
      container: container === false ? 'wsd-test-none' : container,
      credentials: { accountKeyFile: keyFile },
      ...(tls ? { caFile: tls.caFile } : {}),
    },
    accountUrl,
    dataDir,
    service,
  };
}

/** Any HTTP answer (Azurite answers 403 to an unsigned request) means the blob service is up. */
async function answersHttp(endpoint: string): Promise<boolean> {
  const response = await fetch(`${endpoint}/${azuriteAccount.name}?comp=list`, { signal: AbortSignal.timeout(2000) });
  await response.arrayBuffer();
  return response.status > 0;
}

async function answersHttps(endpoint: string, ca: Buffer): Promise<boolean> {
  return await new Promise((resolve) => {
    const request = https.get(`${endpoint}/${azuriteAccount.name}?comp=list`, { ca, timeout: 2000 }, (response) => {
      response.resume();
      resolve(true);
    });
    request.on('error', () => resolve(false));
    request.on('timeout', () => request.destroy());
  });
}
