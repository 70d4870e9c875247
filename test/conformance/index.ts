export { describeStorageBackendConformance, type StorageConformanceOptions } from './storage-backend.js';
export { describeContentInitializerConformance, type InitializerConformanceCase } from './content-initializer.js';
