import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isWsdError } from '../../../core/plugin-api.js';
import { makeTestPki } from '../../../test/kit/certificates.js';
import { startAzurite, type AzuriteServer } from '../../../test/kit/servers/azurite.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { azureConfigSchema } from './azure-config.js';
import { AzureStorageBackend } from './azure-storage-backend.js';

// A private endpoint behind a CA of its own: Azurite over HTTPS with a certificate from a throw-away CA.
describe('storage/azure over TLS with a private CA', () => {
  let azurite: AzuriteServer;
  before(async () => {
    const pki = makeTestPki(tempDir('wsd-azure-pki-'));
    azurite = await startAzurite({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert } });
  });
  after(async () => {
    await azurite?.server.stop();
  });

  it('trusts the endpoint with caFile', async () => {
    assert.match(azurite.storageConfig.endpoint, /^https:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    const backend = new AzureStorageBackend(azureConfigSchema.parse({ ...azurite.storageConfig, abortUploadsOlderThan: 0 }));
    await backend.start();
    const { etag } = await backend.put({ key: 'tls/x', body: Buffer.from('over tls') });
    assert.equal((await backend.head({ key: 'tls/x' })).etag, etag);
  });

  it('refuses the endpoint without caFile, saying so, without retrying', async () => {
    const { caFile: _, ...withoutCa } = azurite.storageConfig;
    const backend = new AzureStorageBackend(azureConfigSchema.parse({ ...withoutCa, abortUploadsOlderThan: 0, retries: 10 }), { retryDelayMs: 60_000 });
    // With 10 retries a minute apart, only a failure that is not retried ends within the test's time.
    await assert.rejects(backend.start(), (error: unknown) => {
      assert.ok(isWsdError(error, 'UNAVAILABLE'), String(error));
      assert.match(error.message, /TLS connection to https:\/\/127\.0\.0\.1:\d+\/devstoreaccount1 refused: .*\(set caFile if the endpoint uses a private CA\)/);
      return true;
    });
  });
});
