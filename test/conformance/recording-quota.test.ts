import { recordingQuota } from '../kit/fakes.js';
import { tempDir } from '../kit/temp-dir.js';
import { describeQuotaStrategyConformance } from './quota-strategy.js';

// The fake the lifecycle tests rely on must keep the contract it stands in for.
describeQuotaStrategyConformance('recording fake', { create: () => recordingQuota(), workspaceRoot: () => tempDir('wsd-quota-fake-') });
describeQuotaStrategyConformance('recording fake, reporting usage, without soft limits', {
  create: () => recordingQuota([], { capabilities: { reportsUsage: true, softLimits: false, resizable: false } }),
  workspaceRoot: () => tempDir('wsd-quota-fake-'),
});
