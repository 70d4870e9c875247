import { BackupContentInitializer } from './backup-content-initializer.js';
import { definePlugin } from '../../../core/plugin-api.js';

export const backupInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'backup',
  description: "Restores the workspace's latest backup (NOT_FOUND when there is none)",
  create: () => new BackupContentInitializer(),
});
