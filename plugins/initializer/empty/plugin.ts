import { definePlugin } from '../../../core/kernel/plugin.js';
import { EmptyContentInitializer } from './empty-content-initializer.js';

export const emptyInitializerPlugin = definePlugin({
  kind: 'initializer',
  id: 'empty',
  description: 'Starts a workspace with an empty folder',
  create: () => new EmptyContentInitializer(),
});
