import { durationSchema, sizeSchema, z, type Logger } from '../../../core/plugin-api.js';

/** Resumable uploads send chunks whose size is a multiple of this (the service's rule). */
export const chunkQuantum = 256 * 1024;

/** GCS bucket names: 3-63 characters (up to 222 with dots), lowercase letters, digits, `-`, `_` and `.`. */
const bucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'must be a GCS bucket name: 3-63 lowercase letters, digits, "-", "_" or "." (up to 222 with dots), starting and ending with a letter or digit')
  .refine((name) => name.split('.').every((part) => part.length > 0 && part.length <= 63), 'must have dot-separated parts of 1-63 characters')
  .refine((name) => name.includes('.') || name.length <= 63, 'must be at most 63 characters unless it contains dots');

export const gcsConfigSchema = z.strictObject({
  bucket: bucketName
    .optional()
    .describe('Bucket that holds the objects. Required when storage.plugin is gcs (optional here so that an unused section validates).'),
  prefix: z
    .string()
    .max(512)
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')
    .refine((p) => !p.startsWith('/'), 'must not start with "/"')
    .default('')
    .describe('Prepended to every key, e.g. "wsd/" to share a bucket; a plain string prefix (end it with "/" to make it a folder).'),
  projectId: z
    .string()
    .regex(/^(?:[a-z0-9.-]{1,63}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a Google Cloud project id (6-30 lowercase letters, digits and "-")')
    .optional()
    .describe('Project that owns the bucket; needed only with createBucket (default: the project of the credentials).'),
  endpoint: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://storage.googleapis.com')
    .describe('JSON API endpoint: https://storage.googleapis.com, a private endpoint, or an emulator such as fake-gcs-server (http://127.0.0.1:4443).'),
  anonymous: z
    .boolean()
    .default(false)
    .describe('Send no credentials at all (emulators, public buckets). Otherwise keyFile or the Application Default Credentials are used.'),
  keyFile: z
    .string()
    .min(1)
    .optional()
    .describe('Credentials file: a service account key or a workload identity federation config (JSON). Default: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC, or the metadata server on GCE/GKE). Relative paths follow the config file.'),
  caFile: z
    .string()
    .min(1)
    .optional()
    .describe('PEM file of extra certificate authorities trusted for the endpoint (a private endpoint or a TLS-inspecting proxy), in addition to the system ones.'),
  chunkSize: sizeSchema
    .prefault('32MiB')
    .refine((n) => n >= chunkQuantum && n % chunkQuantum === 0 && n <= 1024 ** 3, 'must be a multiple of 256KiB between 256KiB and 1GiB')
    .describe('Objects larger than this go up as a resumable upload in chunks of this size (each held in memory, two per running upload); smaller ones in a single request. A multiple of 256KiB.'),
  requestTimeout: durationSchema
    .prefault('60s')
    .refine((ms) => ms >= 100, 'must be at least 100ms')
    .describe('A request that sends or receives nothing for this long fails (and is retried).'),
  retries: z
    .number()
    .int()
    .min(0)
    .max(20)
    .default(5)
    .describe('Retries of a request that failed transiently (5xx, 429, timeouts, resets), with exponential backoff and jitter.'),
  retryDelay: durationSchema
    .prefault('500ms')
    .describe('Wait before the first retry; doubles with each retry, at most 30s.'),
  createBucket: z
    .boolean()
    .default(false)
    .describe('Create the bucket at start when it does not exist (needs storage.buckets.create). Otherwise a missing bucket fails the start.'),
  bucketLocation: z
    .string()
    .min(1)
    .optional()
    .describe('Location of a bucket that createBucket creates, e.g. EU or europe-west1 (default: the service default, US).'),
});

export type GcsConfig = z.output<typeof gcsConfigSchema>;

/** What the backend needs, with paths resolved and the bucket known. */
export interface GcsBackendOptions {
  bucket: string;
  prefix?: string;
  projectId?: string;
  endpoint?: string;
  anonymous?: boolean;
  keyFile?: string;
  caFile?: string;
  chunkSize?: number;
  requestTimeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  createBucket?: boolean;
  bucketLocation?: string;
  /** Where retries, recovered lost answers and removed wrong objects are reported (warn/info). */
  log?: Logger;
}
