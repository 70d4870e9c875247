import { describeStorageBackendConformance } from '../../../test/conformance/storage-backend.js';
import { startMinio } from '../../../test/kit/servers/minio.js';
import { s3Backend } from '../../../test/kit/storage-s3/s3-test-setup.js';

// The whole contract against a real MinIO: a 200 MiB stream (13 parts of 16 MiB), > 1000 non-ASCII keys over two
// listing pages, racing conditional writers, presigned URLs and server-side copy.
describeStorageBackendConformance('s3 (MinIO)', async () => {
  const minio = await startMinio();
  return { backend: s3Backend(minio), teardown: () => minio.server.stop() };
});
