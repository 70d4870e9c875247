import { readFile } from 'node:fs/promises';
import { WsdError, definePlugin, errnoCode } from '../../../core/plugin-api.js';
import { s3ConfigSchema } from './s3-config.js';

export const s3StoragePlugin = definePlugin({
  kind: 'storage',
  id: 's3',
  description: 'Objects in an S3 bucket: AWS S3, MinIO, Ceph RGW and other S3-compatible stores (shared by every node)',
  configSchema: s3ConfigSchema,
  create: async ({ config, log, resolvePath }) => {
    const credentials =
      config.credentials.source === 'files'
        ? {
            ...config.credentials,
            accessKeyIdFile: resolvePath(config.credentials.accessKeyIdFile),
            secretAccessKeyFile: resolvePath(config.credentials.secretAccessKeyFile),
            ...(config.credentials.sessionTokenFile ? { sessionTokenFile: resolvePath(config.credentials.sessionTokenFile) } : {}),
          }
        : config.credentials;
    let ca: string | undefined;
    if (config.caFile) {
      const caFile = resolvePath(config.caFile);
      ca = await readFile(caFile, 'utf8').catch((error: unknown) => {
        throw new WsdError('FAILED_PRECONDITION', `storage/s3: caFile ${caFile} cannot be read (${errnoCode(error) ?? (error as Error).message})`, { field: 'caFile' });
      });
    }
    // Loaded only when chosen: the minio SDK would otherwise load on every start.
    const { S3StorageBackend } = await import('./s3-storage-backend.js');
    return new S3StorageBackend({ config: { ...config, credentials }, ca, log });
  },
});
