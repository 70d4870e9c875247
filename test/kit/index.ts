export { startTestKernel, type TestKernel, type TestKernelOptions } from './start-test-kernel.js';
export { tempDir } from './temp-dir.js';
export { patternStream, sha256Of } from './streams.js';
export { memoryStorage, recordingQuota, settableHealthCheck } from './fakes.js';
export { startDaemonProcess, runWsd, wsdBin, testDaemonConfig, type DaemonProcess } from './daemon-process.js';
export { treeManifest, firstDifference, type TreeEntry } from './tree-hash.js';
export { initializerRun, type InitializerRun } from './initializer-options.js';
export { rawTar, type RawTarEntry } from './tar-writer.js';
export { makeRepos, startGitHttpServer, type TestRepos, type GitHttpServer } from './git-fixtures.js';
