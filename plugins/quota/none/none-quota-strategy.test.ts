import { describeQuotaStrategyConformance } from '../../../test/conformance/quota-strategy.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { NoneQuotaStrategy } from './none-quota-strategy.js';

describeQuotaStrategyConformance('none', { create: () => new NoneQuotaStrategy(), workspaceRoot: () => tempDir('wsd-quota-none-') });
