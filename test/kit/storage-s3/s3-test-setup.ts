import { startMinio, type StartMinioOptions, type StartedMinio } from '../servers/minio.js';
import { s3ConfigSchema, type S3Config } from '../../../plugins/storage/s3/s3-config.js';
import { S3StorageBackend, type S3StorageBackendOptions } from '../../../plugins/storage/s3/s3-storage-backend.js';

/** The plugin's config for `storageConfig` plus `overrides`, validated and with defaults, as `create` would get it. */
export function s3Config(storageConfig: object, overrides: Record<string, unknown> = {}): S3Config {
  const parsed = s3ConfigSchema.safeParse({ ...storageConfig, ...overrides });
  if (!parsed.success) throw new Error(`test config invalid: ${parsed.error.message}`);
  return parsed.data;
}

/** A backend on a test server's `storageConfig` (not yet `start()`ed), with config `overrides` (short retries by default). */
export function s3Backend(
  minio: { storageConfig: object },
  overrides: Record<string, unknown> = {},
  options: Omit<S3StorageBackendOptions, 'config'> = {},
): S3StorageBackend {
  return new S3StorageBackend({ config: s3Config(minio.storageConfig, { retry: { initialDelay: '50ms', maxDelay: '1s' }, ...overrides }), ...options });
}

/** A MinIO server and a started backend on it; `close` stops both. */
export async function minioWithBackend(
  overrides: Record<string, unknown> = {},
  minioOptions: StartMinioOptions = {},
): Promise<{ minio: StartedMinio; backend: S3StorageBackend; close: () => Promise<void> }> {
  const minio = await startMinio(minioOptions);
  const backend = s3Backend(minio, overrides);
  try {
    await backend.start();
  } catch (error) {
    await minio.server.stop();
    throw error;
  }
  return {
    minio,
    backend,
    close: async () => {
      await backend.stop();
      await minio.server.stop();
    },
  };
}

/** An S3 error document, for answers a fault proxy makes up. */
export function s3ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}
