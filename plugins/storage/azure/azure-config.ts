import { durationSchema, sizeSchema, z } from '../../../core/plugin-api.js';

/** Azure's limits on a block: 4000 MiB at most (service version 2019-12-12 and later). */
export const maxBlockBytes = 4000 * 1024 * 1024;
/** Smallest block size accepted: smaller blocks only multiply requests (50 000 of them cap a blob). */
export const minBlockBytes = 256 * 1024;

/**
 * Azure account names: 3–24 lower-case letters and digits. Container names: 3–63 lower-case letters, digits and
 * single hyphens, starting and ending with a letter or digit.
 */
const accountNamePattern = /^[a-z0-9]{3,24}$/;
const containerNamePattern = /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$/;

const credentialsSchema = z
  .strictObject({
    accountKeyFile: z.string().min(1).optional().describe('File holding the account key (base64, as the portal shows it). Relative paths follow the config file.'),
    sasTokenFile: z.string().min(1).optional().describe('File holding a SAS token (the query string, with or without a leading "?"), for the container or the account.'),
    connectionStringFile: z
      .string()
      .min(1)
      .optional()
      .describe('File holding a connection string (AccountName + AccountKey, or BlobEndpoint + SharedAccessSignature); it supplies the account and endpoint.'),
  })
  .refine((c) => [c.accountKeyFile, c.sasTokenFile, c.connectionStringFile].filter(Boolean).length <= 1, {
    message: 'set at most one of accountKeyFile, sasTokenFile, connectionStringFile',
  })
  .prefault({})
  .describe(
    'Where the credentials come from; never inline. With no file set: the environment AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN (first set wins). Managed identity needs @azure/identity and is not supported yet.',
  );

export const azureConfigSchema = z
  .strictObject({
    accountName: z
      .string()
      .regex(accountNamePattern, 'must be an Azure storage account name: 3-24 lower-case letters and digits')
      .optional()
      .describe('Storage account. Required with an account key; with a SAS token, accountName or endpoint; a connection string names it itself.'),
    endpoint: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://myaccount.blob.core.windows.net' })
      .optional()
      .describe(
        'Blob service URL. Default https://<accountName>.blob.core.windows.net; set it for sovereign clouds, private endpoints and emulators (path-style: http://127.0.0.1:10000/devstoreaccount1).',
      ),
    container: z
      .string()
      .regex(containerNamePattern, 'must be an Azure container name: 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit')
      .optional()
      .describe('Container that holds the objects. Required when storage.plugin is azure (optional here so that an unused section validates).'),
    prefix: z
      .string()
      .max(512)
      .default('')
      .refine((p) => p === '' || (!p.startsWith('/') && !p.includes('//')), 'must not start with "/" or contain "//"')
      // eslint-disable-next-line no-control-regex
      .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'must not contain control characters')
      .describe('Prepended to every key to make the blob name, e.g. "wsd/" (include the trailing "/" if you want a folder).'),
    credentials: credentialsSchema,
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe('PEM file with CA certificates trusted for the endpoint in addition to the system ones (a private endpoint or a TLS-inspecting proxy).'),
    blockSize: sizeSchema
      .prefault('8MiB')
      .refine((n) => n >= minBlockBytes && n <= maxBlockBytes, `must be between ${minBlockBytes / 1024} KiB and 4000 MiB`)
      .describe(
        'Size of the staged blocks of a large put (a body up to this size goes in one request). Each upload holds up to (concurrency + 1) blocks in memory.',
      ),
    concurrency: z.number().int().min(1).max(64).default(4).describe('Blocks of one put uploaded at once.'),
    requestTimeout: durationSchema
      .prefault('60s')
      .refine((ms) => ms >= 1000, 'must be at least 1s')
      .describe('Time one HTTP request may take until its response starts (a block upload included); a download that stalls this long is resumed.'),
    retries: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(4)
      .describe('Retries of a request that failed transiently (timeouts, resets, 500/503, throttling), with exponential backoff and jitter.'),
    createBucket: z
      .boolean()
      .default(false)
      .describe('Create the container at start when it is missing; otherwise a missing container fails the start.'),
    abortUploadsOlderThan: durationSchema
      .prefault('24h')
      .describe(
        'At start, in the background, remove the staged blocks of puts of new keys under `prefix` that were never committed and began longer ago than this (left by a crash or an outage); 0 disables. Azure drops them itself after 7 days.',
      ),
  });

export type AzureStorageConfig = z.output<typeof azureConfigSchema>;
/** The config as written (sizes and durations as text): what a test or a config file passes in. */
export type AzureStorageConfigInput = z.input<typeof azureConfigSchema>;
