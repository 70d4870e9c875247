export { describeStorageBackendConformance, type StorageConformanceOptions } from './storage-backend.js';
