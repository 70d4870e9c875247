import { definePlugin, z } from '../../../core/plugin-api.js';
import { LocalStorageBackend } from './local-storage-backend.js';

export const localStoragePlugin = definePlugin({
  kind: 'storage',
  id: 'local',
  description: 'Objects as files in a local folder (single node, tests, the embedded default)',
  configSchema: z.strictObject({
    root: z
      .string()
      .min(1)
      .optional()
      .describe('Folder that holds the objects. Default: <dataDir>/storage. Relative paths follow the config file.'),
  }),
  create: ({ config, paths, resolvePath }) =>
    new LocalStorageBackend(config.root ? resolvePath(config.root) : `${paths.dataDir}/storage`),
});
