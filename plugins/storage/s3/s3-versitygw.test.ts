import { storageBackendConformance } from '../../../test/conformance/storage-backend.js';
import { runWithNodeTest } from '../../../test/conformance/suite.js';
import { startVersitygw } from '../../../test/kit/servers/versitygw.js';
import { describeConditionalMultipart } from '../../../test/kit/storage-s3/conditional-multipart-cases.js';
import { s3Backend } from '../../../test/kit/storage-s3/s3-test-setup.js';

// The same contract on a second S3 implementation, one that checks conditions on CompleteMultipartUpload only (as
// AWS does): the case where a condition sent with the initiating request would protect nothing.
const suite = storageBackendConformance('s3 (versitygw)', async () => {
  const gateway = await startVersitygw();
  return { backend: s3Backend(gateway), teardown: () => gateway.server.stop() };
});
// versitygw's posix backend maps keys to files, so it cannot hold `x` and `x/y` at once (409 ObjectParentIsFile):
// a limit of that server, not of the plugin (MinIO and AWS hold both; the MinIO run checks it).
suite.cases = suite.cases.filter((c) => c.name !== 'keeps a key and a key below it apart');
runWithNodeTest(suite);

describeConditionalMultipart('versitygw', async () => {
  const gateway = await startVersitygw();
  return { storageConfig: gateway.storageConfig, stop: () => gateway.server.stop() };
});
