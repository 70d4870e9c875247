import { startMinio } from '../../../test/kit/servers/minio.js';
import { describeConditionalMultipart } from '../../../test/kit/storage-s3/conditional-multipart-cases.js';

describeConditionalMultipart('MinIO', async () => {
  const minio = await startMinio();
  return { storageConfig: minio.storageConfig, stop: () => minio.server.stop() };
});
