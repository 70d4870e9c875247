import { definePlugin } from '../../../core/kernel/plugin.js';
import { PrebuildContentInitializer } from './prebuild-content-initializer.js';

export const prebuildInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'prebuild',
  description: 'Restores a prebuild snapshot and brings its git checkouts to their targets',
  create: () => new PrebuildContentInitializer(),
});
