import { EmptyContentInitializer } from './empty-content-initializer.js';
import { definePlugin } from '../../../core/plugin-api.js';

export const emptyInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'empty',
  description: 'Starts a workspace with an empty folder',
  create: () => new EmptyContentInitializer(),
});
