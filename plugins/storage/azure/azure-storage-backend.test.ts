import { describeStorageBackendConformance } from '../../../test/conformance/storage-backend.js';
import { startAzurite } from '../../../test/kit/servers/azurite.js';
import { azureConfigSchema } from './azure-config.js';
import { AzureStorageBackend } from './azure-storage-backend.js';

// The storage contract against a real Azurite: a 200 MiB stream in staged blocks, conditional puts on Put Blob and
// Put Block List, 1100 non-ASCII keys over several pages in UTF-8 order.
describeStorageBackendConformance('azure', async () => {
  const azurite = await startAzurite();
  const config = azureConfigSchema.parse(azurite.storageConfig);
  return { backend: new AzureStorageBackend(config), teardown: () => azurite.server.stop() };
});
