import { definePlugin } from '../../../core/plugin-api.js';
import { azureConfigSchema } from './azure-config.js';
import { AzureStorageBackend } from './azure-storage-backend.js';

export const azureStoragePlugin = definePlugin({
  kind: 'storage',
  id: 'azure',
  description: 'Azure Blob Storage (block blobs in one container), with @azure/storage-blob',
  configSchema: azureConfigSchema,
  create: ({ config, log, resolvePath }) => new AzureStorageBackend(config, { resolvePath, log }),
});
