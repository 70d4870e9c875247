import { CompositeContentInitializer } from './composite-content-initializer.js';
import { definePlugin } from '../../../core/plugin-api.js';

export const compositeInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'composite',
  description: 'Runs several initializers in order into one workspace',
  create: () => new CompositeContentInitializer(),
});
