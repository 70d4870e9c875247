import { z } from 'zod';
import { SnapshotContentInitializer } from './snapshot-content-initializer.js';
import { definePlugin } from '../../../core/plugin-api.js';

export const snapshotInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'snapshot',
  description: 'Restores a snapshot by the name TakeSnapshot returned',
  configSchema: z.strictObject({
    allowOtherOwners: z
      .boolean()
      .default(false)
      .describe("Restore snapshots of other owners (a snapshot name starts with its owner). Off: a user restores only their own snapshots; prebuilds have their own setting."),
  }),
  create: ({ config }) => new SnapshotContentInitializer({ allowOtherOwners: config.allowOtherOwners }),
});
