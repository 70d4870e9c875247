import { definePlugin } from '../../../core/kernel/plugin.js';
import { BackupContentInitializer } from './backup-content-initializer.js';

export const backupInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'backup',
  description: "Restores the workspace's latest backup (NOT_FOUND when there is none)",
  create: () => new BackupContentInitializer(),
});
