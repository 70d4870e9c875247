import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential, type StoragePipelineOptions } from '@azure/storage-blob';
import { WsdError, errnoCode } from '../../../core/plugin-api.js';
import type { AzureStorageConfig } from './azure-config.js';

/** Where the credentials of the account come from; the secret itself never leaves this module except into the SDK. */
export type AzureCredentialSource =
  | { kind: 'accountKey'; accountKey: string; from: string }
  | { kind: 'sasToken'; sasToken: string; from: string }
  | { kind: 'connectionString'; connectionString: string; from: string };

export interface AzureConnection {
  service: BlobServiceClient;
  /** The blob service URL without any query (a SAS token lives there): safe to print. */
  endpoint: string;
  /** Which credentials are used and where they came from (a file path or a variable name), for messages. */
  credentials: string;
}

/** Config paths, so every error names the setting at fault. */
const at = (field: string) => `storage.azure.${field}`;

/**
 * Reads the credentials the config names, or else the first of AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY,
 * AZURE_STORAGE_SAS_TOKEN that is set. Errors name the setting and the file or variable, never their content.
 */
export async function readAzureCredentials(
  config: AzureStorageConfig,
  options: { resolvePath: (p: string) => string; env: NodeJS.ProcessEnv },
): Promise<AzureCredentialSource> {
  const { accountKeyFile, sasTokenFile, connectionStringFile } = config.credentials;
  const fromFile = async (file: string, field: string) => {
    const full = options.resolvePath(file);
    try {
      const text = (await readFile(full, 'utf8')).trim();
      if (text === '') throw new WsdError('INVALID_ARGUMENT', `${at(field)}: ${full} is empty`, { field: at(field) });
      return { text, from: full };
    } catch (error) {
      if (error instanceof WsdError) throw error;
      throw new WsdError('INVALID_ARGUMENT', `${at(field)}: cannot read ${full}: ${errnoCode(error) ?? (error as Error).message}`, { field: at(field) });
    }
  };
  let source: AzureCredentialSource;
  if (accountKeyFile) {
    const { text, from } = await fromFile(accountKeyFile, 'credentials.accountKeyFile');
    source = { kind: 'accountKey', accountKey: text, from };
  } else if (sasTokenFile) {
    const { text, from } = await fromFile(sasTokenFile, 'credentials.sasTokenFile');
    source = { kind: 'sasToken', sasToken: text, from };
  } else if (connectionStringFile) {
    const { text, from } = await fromFile(connectionStringFile, 'credentials.connectionStringFile');
    source = { kind: 'connectionString', connectionString: text, from };
  } else if (options.env.AZURE_STORAGE_CONNECTION_STRING) {
    source = { kind: 'connectionString', connectionString: options.env.AZURE_STORAGE_CONNECTION_STRING.trim(), from: 'AZURE_STORAGE_CONNECTION_STRING' };
  } else if (options.env.AZURE_STORAGE_KEY) {
    source = { kind: 'accountKey', accountKey: options.env.AZURE_STORAGE_KEY.trim(), from: 'AZURE_STORAGE_KEY' };
  } else if (options.env.AZURE_STORAGE_SAS_TOKEN) {
    source = { kind: 'sasToken', sasToken: options.env.AZURE_STORAGE_SAS_TOKEN.trim(), from: 'AZURE_STORAGE_SAS_TOKEN' };
  } else {
    throw new WsdError(
      'INVALID_ARGUMENT',
      `${at('credentials')}: no credentials: set accountKeyFile, sasTokenFile or connectionStringFile, or the environment AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN (managed identity needs @azure/identity, which wsd does not ship yet)`,
      { field: at('credentials') },
    );
  }
  checkShape(source);
  return source;
}

function checkShape(source: AzureCredentialSource): void {
  const field = source.from.startsWith('AZURE_') ? at('credentials') : at(`credentials.${source.kind}File`);
  const refuse = (what: string) => {
    throw new WsdError('INVALID_ARGUMENT', `${field}: ${source.from} ${what}`, { field });
  };
  if (source.kind === 'accountKey') {
    // A key is 64 random bytes in base64; a mangled one would only show up as every request being refused.
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(source.accountKey) || Buffer.from(source.accountKey, 'base64').length < 16) {
      refuse('does not hold a base64 account key');
    }
  } else if (source.kind === 'sasToken') {
    if (!/(^|[?&])sig=/.test(source.sasToken)) refuse('does not hold a SAS token (no sig= parameter)');
  } else if (!/(^|;)\s*(AccountName|BlobEndpoint|UseDevelopmentStorage)=/i.test(source.connectionString)) {
    refuse('does not hold a connection string (no AccountName, BlobEndpoint or UseDevelopmentStorage)');
  }
}

/**
 * The SDK client for the account, with the SDK's own retries off (the backend retries, and knows which requests may
 * be retried) and, with `caFile`, the extra CA certificates trusted.
 *
 * The CA goes in as `tlsOptions`: `@azure/storage-blob` hands every pipeline option it does not know itself on to
 * `@azure/core-rest-pipeline`'s `createPipelineFromOptions`, whose `tlsOptions` become the TLS settings of every
 * request (one cached agent per setting). The alternative, a hand-written `httpClient`, would replace the SDK's
 * keep-alive agent handling and its abort wiring; tested in `azure-tls.test.ts` against Azurite over HTTPS.
 */
export async function connectAzure(
  config: AzureStorageConfig,
  source: AzureCredentialSource,
  options: { resolvePath: (p: string) => string },
): Promise<AzureConnection> {
  const pipelineOptions: StoragePipelineOptions & { tlsOptions?: { ca: string[] } } = {
    retryOptions: { maxTries: 1 },
    keepAliveOptions: { enable: true },
    userAgentOptions: { userAgentPrefix: 'wsd' },
  };
  if (config.caFile) {
    const full = options.resolvePath(config.caFile);
    let pem: string;
    try {
      pem = await readFile(full, 'utf8');
    } catch (error) {
      throw new WsdError('INVALID_ARGUMENT', `${at('caFile')}: cannot read ${full}: ${errnoCode(error) ?? (error as Error).message}`, { field: at('caFile') });
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new WsdError('INVALID_ARGUMENT', `${at('caFile')}: ${full} holds no PEM certificate`, { field: at('caFile') });
    }
    // Node's `ca` replaces the default roots; keeping them lets one setting serve a private CA and public Azure.
    pipelineOptions.tlsOptions = { ca: [...rootCertificates, pem] };
  }

  if (source.kind === 'connectionString') {
    if (config.endpoint) {
      throw new WsdError('INVALID_ARGUMENT', `${at('endpoint')}: the connection string (${source.from}) names the endpoint; leave endpoint unset`, {
        field: at('endpoint'),
      });
    }
    let service: BlobServiceClient;
    try {
      service = BlobServiceClient.fromConnectionString(source.connectionString, pipelineOptions);
    } catch {
      // The SDK's message may quote the string; say which one without it.
      throw new WsdError('INVALID_ARGUMENT', `${at('credentials')}: the connection string in ${source.from} is not one the Azure SDK accepts`, {
        field: at('credentials'),
      });
    }
    const named = service.accountName;
    if (config.accountName && named && config.accountName !== named) {
      throw new WsdError('INVALID_ARGUMENT', `${at('accountName')}: ${config.accountName} differs from the connection string's account ${named}`, {
        field: at('accountName'),
      });
    }
    return { service, endpoint: withoutQuery(service.url), credentials: `connection string from ${source.from}` };
  }

  if (!config.endpoint && !config.accountName) {
    throw new WsdError('INVALID_ARGUMENT', `${at('accountName')}: set accountName (or endpoint) for ${source.kind === 'accountKey' ? 'an account key' : 'a SAS token'} from ${source.from}`, {
      field: at('accountName'),
    });
  }
  const endpoint = (config.endpoint ?? `https://${config.accountName}.blob.core.windows.net`).replace(/\/+$/, '');
  if (new URL(endpoint).search) {
    throw new WsdError('INVALID_ARGUMENT', `${at('endpoint')}: must not carry a query; put a SAS token in credentials.sasTokenFile`, { field: at('endpoint') });
  }
  if (source.kind === 'accountKey') {
    if (!config.accountName) {
      throw new WsdError('INVALID_ARGUMENT', `${at('accountName')}: an account key (${source.from}) needs the account name`, { field: at('accountName') });
    }
    const credential = new StorageSharedKeyCredential(config.accountName, source.accountKey);
    return { service: new BlobServiceClient(endpoint, credential, pipelineOptions), endpoint, credentials: `account key from ${source.from}` };
  }
  const token = source.sasToken.replace(/^\?/, '');
  return {
    service: new BlobServiceClient(`${endpoint}?${token}`, new AnonymousCredential(), pipelineOptions),
    endpoint,
    credentials: `SAS token from ${source.from}`,
  };
}

function withoutQuery(url: string): string {
  const parsed = new URL(url);
  parsed.search = '';
  return parsed.toString().replace(/\/+$/, '');
}
