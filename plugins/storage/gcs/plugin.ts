import { WsdError, definePlugin } from '../../../core/plugin-api.js';
import { gcsConfigSchema } from './gcs-config.js';

export const gcsStoragePlugin = definePlugin({
  kind: 'storage',
  id: 'gcs',
  description: 'Objects in a Google Cloud Storage bucket (or a GCS emulator such as fake-gcs-server)',
  configSchema: gcsConfigSchema,
  create: async ({ config, resolvePath, log }) => {
    if (!config.bucket) throw new WsdError('INVALID_ARGUMENT', 'storage.gcs.bucket: required when storage.plugin is gcs', { field: 'storage.gcs.bucket' });
    // Loaded only when chosen: the GCS SDK alone adds a few hundred milliseconds and tens of MB to every start.
    const { GcsStorageBackend } = await import('./gcs-storage-backend.js');
    return new GcsStorageBackend({
      bucket: config.bucket,
      prefix: config.prefix,
      endpoint: config.endpoint,
      anonymous: config.anonymous,
      chunkSize: config.chunkSize,
      requestTimeoutMs: config.requestTimeout,
      retries: config.retries,
      retryDelayMs: config.retryDelay,
      createBucket: config.createBucket,
      log,
      ...(config.projectId ? { projectId: config.projectId } : {}),
      ...(config.keyFile ? { keyFile: resolvePath(config.keyFile) } : {}),
      ...(config.caFile ? { caFile: resolvePath(config.caFile) } : {}),
      ...(config.bucketLocation ? { bucketLocation: config.bucketLocation } : {}),
    });
  },
});
