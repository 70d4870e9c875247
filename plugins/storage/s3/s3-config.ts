import { durationSchema, sizeSchema, z } from '../../../core/plugin-api.js';

const mib = 1024 * 1024;
/** S3's limits on parts: every part but the last at least 5 MiB, none above 5 GiB. */
export const minPartSize = 5 * mib;
export const maxPartSize = 5 * 1024 * mib;

/** S3 bucket names: 3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit. */
const bucketSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name: 3-63 lowercase letters, digits, "." and "-"')
  .refine((name) => !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name), 'must be an S3 bucket name (no "..", not an IP address)');

const endpointSchema = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a URL like https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:9000' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL' });
  // Credentials in the URL would end up in logs and error texts; a path or query has no meaning for S3 endpoints.
  if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not contain credentials (use credentials.*)' });
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    ctx.addIssue({ code: 'custom', message: 'must be scheme://host[:port] only, without a path or query (the bucket goes in `bucket`)' });
  }
});

const prefixSchema = z
  .string()
  .max(512)
  .refine((p) => p === '' || (!p.startsWith('/') && !p.includes('//')), 'must not start with "/" or contain "//"')
  // eslint-disable-next-line no-control-regex
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'must not contain control characters');

const nonEmptyPath = z.string().min(1, 'must be a file path');

export const credentialsSchema = z
  .discriminatedUnion('source', [
    z.strictObject({
      source: z.literal('auto').describe('AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) when set, else the IAM chain (see source: iam).'),
    }),
    z.strictObject({
      source: z.literal('files').describe('Keys read from files (e.g. a mounted Kubernetes secret); re-read when they change.'),
      accessKeyIdFile: nonEmptyPath.describe('File holding the access key id. Relative paths follow the config file.'),
      secretAccessKeyFile: nonEmptyPath.describe('File holding the secret access key. Relative paths follow the config file.'),
      sessionTokenFile: nonEmptyPath.optional().describe('File holding a session token (temporary credentials), if any.'),
    }),
    z.strictObject({
      source: z.literal('env').describe('AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (optional) AWS_SESSION_TOKEN of the daemon process.'),
    }),
    z.strictObject({
      source: z
        .literal('iam')
        .describe('EKS IRSA (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), ECS task role (AWS_CONTAINER_CREDENTIALS_*), else the EC2 instance role (IMDSv2).'),
      imdsEndpoint: endpointSchema.optional().describe('Instance metadata service to ask instead of http://169.254.169.254 (tests, proxies).'),
    }),
  ])
  .describe(
    'Where the S3 keys come from, never inline in the config. source: auto (env if AWS_ACCESS_KEY_ID is set, else iam) | files (accessKeyIdFile, secretAccessKeyFile, sessionTokenFile) | env | iam (IRSA, ECS task role, EC2 instance role; imdsEndpoint).',
  );

export const s3ConfigSchema = z.strictObject({
  endpoint: endpointSchema
    .optional()
    .describe('S3 service URL, scheme://host[:port]. Default: AWS S3 in `region` (https://s3.<region>.amazonaws.com).'),
  region: z
    .string()
    .regex(/^[a-z0-9-]{1,64}$/, 'must be a region name like eu-central-1')
    .default('us-east-1')
    .describe('Region requests are signed for (MinIO and most S3-compatible stores accept us-east-1).'),
  bucket: bucketSchema.describe('Bucket that holds the objects.'),
  prefix: prefixSchema.default('').describe('Prepended to every key, e.g. "wsd/" (include the trailing "/" if you want a folder).'),
  pathStyle: z
    .boolean()
    .optional()
    .describe('Address the bucket in the path (https://host/bucket/key) instead of the host name. Default: true, except for amazonaws.com endpoints.'),
  credentials: credentialsSchema.prefault({ source: 'auto' }),
  caFile: nonEmptyPath
    .optional()
    .describe('PEM file of the CA(s) to trust for an https endpoint (in addition to the system CAs). Relative paths follow the config file.'),
  partSize: sizeSchema
    .prefault('16MiB')
    .refine((n) => n >= minPartSize && n <= maxPartSize, 'must be between 5MiB and 5GiB (S3 part limits)')
    .describe('Size of the parts of a multipart upload; bodies smaller than this go in one PUT. Memory per put: about partSize x (concurrency + 1).'),
  concurrency: z.number().int().min(1).max(64).default(4).describe('Parts of one upload in flight at once.'),
  requestTimeout: durationSchema
    .prefault('30s')
    .refine((ms) => ms > 0, 'must be more than 0')
    .describe('How long a request may wait for the server with no data moving (connecting, waiting for an answer, a stalled transfer) before it is abandoned and retried.'),
  retry: z
    .strictObject({
      attempts: z.number().int().min(1).max(20).default(5).describe('Tries of a request in all, for transient failures (timeouts, resets, 5xx, throttling).'),
      initialDelay: durationSchema.prefault('200ms').describe('Wait before the first retry; doubles each retry, randomized (jitter).'),
      maxDelay: durationSchema.prefault('10s').describe('Longest wait between two tries.'),
    })
    .prefault({})
    .describe('Retries of transient failures. Permanent ones (403, 404, bad request) are never retried.'),
  createBucket: z.boolean().default(false).describe('Create the bucket at start when it does not exist; otherwise a missing bucket fails the start.'),
  abortUploadsOlderThan: durationSchema
    .prefault('24h')
    .describe(
      'At start, abort multipart uploads under `prefix` begun longer ago than this (left by a crashed daemon); 0 disables. An AbortIncompleteMultipartUpload lifecycle rule on the bucket does the same server-side.',
    ),
});

export type S3Config = z.output<typeof s3ConfigSchema>;
export type S3Credentials = S3Config['credentials'];

/** Where requests go, derived from the config. */
export interface S3Endpoint {
  /** The endpoint URL as configured (or derived for AWS), e.g. https://s3.eu-central-1.amazonaws.com */
  url: string;
  host: string;
  port: number;
  useSSL: boolean;
  pathStyle: boolean;
}

export function endpointOf(config: Pick<S3Config, 'endpoint' | 'region' | 'pathStyle'>): S3Endpoint {
  const url = new URL(config.endpoint ?? `https://s3.${config.region}.amazonaws.com`);
  const useSSL = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  // AWS deprecates path-style addressing; every other store (MinIO, Ceph, …) is reached most reliably with it.
  const pathStyle = config.pathStyle ?? !/(^|\.)amazonaws\.com(\.cn)?$/.test(host);
  return { url: url.origin, host, port: url.port ? Number(url.port) : useSSL ? 443 : 80, useSSL, pathStyle };
}
