import { describeStorageBackendConformance } from '../../../test/conformance/storage-backend.js';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { LocalStorageBackend } from './local-storage-backend.js';

describeStorageBackendConformance('local', async () => ({ backend: new LocalStorageBackend(tempDir('wsd-local-storage-')) }));
