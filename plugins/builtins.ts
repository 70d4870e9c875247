import type { CatalogEntry } from '../core/kernel/registry.js';
import { diskSpaceHealthPlugin } from './health/disk-space/plugin.js';
import { quotaHealthPlugin } from './health/quota/plugin.js';
import { storageHealthPlugin } from './health/storage/plugin.js';
import { workingAreaHealthPlugin } from './health/working-area/plugin.js';
import { backupInitializerPlugin } from './initializer/backup/plugin.js';
import { compositeInitializerPlugin } from './initializer/composite/plugin.js';
import { downloadInitializerPlugin } from './initializer/download/plugin.js';
import { emptyInitializerPlugin } from './initializer/empty/plugin.js';
import { gitInitializerPlugin } from './initializer/git/plugin.js';
import { prebuildInitializerPlugin } from './initializer/prebuild/plugin.js';
import { snapshotInitializerPlugin } from './initializer/snapshot/plugin.js';
import { loopQuotaPlugin } from './quota/loop/plugin.js';
import { lvmQuotaPlugin } from './quota/lvm/plugin.js';
import { noneQuotaPlugin } from './quota/none/plugin.js';
import { azureStoragePlugin } from './storage/azure/plugin.js';
import { gcsStoragePlugin } from './storage/gcs/plugin.js';
import { xfsQuotaPlugin } from './quota/xfs/plugin.js';
import { localStoragePlugin } from './storage/local/plugin.js';
import { s3StoragePlugin } from './storage/s3/plugin.js';

/** Every plugin that ships with wsd. The one list: a built-in that is not here does not exist. */
export const builtinPlugins: readonly CatalogEntry[] = [
  localStoragePlugin,
  azureStoragePlugin,
  gcsStoragePlugin,
  s3StoragePlugin,
  noneQuotaPlugin,
  loopQuotaPlugin,
  xfsQuotaPlugin,
  lvmQuotaPlugin,
  emptyInitializerPlugin,
  backupInitializerPlugin,
  snapshotInitializerPlugin,
  compositeInitializerPlugin,
  gitInitializerPlugin,
  prebuildInitializerPlugin,
  downloadInitializerPlugin,
  workingAreaHealthPlugin,
  diskSpaceHealthPlugin,
  storageHealthPlugin,
  quotaHealthPlugin,
].map((plugin) => ({ plugin, source: 'built-in' }));
