import { definePlugin } from '../../../core/kernel/plugin.js';
import { CompositeContentInitializer } from './composite-content-initializer.js';

export const compositeInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'composite',
  description: 'Runs several initializers in order into one workspace',
  create: () => new CompositeContentInitializer(),
});
