export { storageBackendConformance, describeStorageBackendConformance, type StorageConformanceOptions } from './storage-backend.js';
export { contentInitializerConformance, describeContentInitializerConformance, type InitializerConformanceCase } from './content-initializer.js';
export { quotaStrategyConformance, describeQuotaStrategyConformance, type QuotaConformanceOptions } from './quota-strategy.js';
export { runWithNodeTest, runSuite, runCase, isCaseSkipped, type ConformanceSuite, type ConformanceCase, type CaseContext } from './suite.js';
export { healthCheckConformance, describeHealthCheckConformance, type HealthConformanceOptions } from './health-check.js';
