import { definePlugin } from '../../../core/plugin-api.js';
import { azureConfigSchema } from './azure-config.js';

export const azureStoragePlugin = definePlugin({
  kind: 'storage',
  id: 'azure',
  description: 'Azure Blob Storage (block blobs in one container), with @azure/storage-blob',
  configSchema: azureConfigSchema,
  // Loaded only when chosen: the Azure SDK alone adds a few hundred milliseconds and tens of MB to every start.
  create: async ({ config, log, resolvePath }) => new (await import('./azure-storage-backend.js')).AzureStorageBackend(config, { resolvePath, log }),
});
