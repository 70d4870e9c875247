import { startMinio } from '../../../test/kit/servers/minio.js';
import { describeConditionalMultipart } from './conditional-multipart-cases.js';

describeConditionalMultipart('MinIO', async () => {
  const minio = await startMinio();
  return { storageConfig: minio.storageConfig, stop: () => minio.server.stop() };
});
