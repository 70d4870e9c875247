import { definePlugin } from '../../../core/kernel/plugin.js';
import { SnapshotContentInitializer } from './snapshot-content-initializer.js';

export const snapshotInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'snapshot',
  description: 'Restores a snapshot by the name TakeSnapshot returned',
  create: () => new SnapshotContentInitializer(),
});
