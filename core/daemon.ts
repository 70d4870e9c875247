import path from 'node:path';
import os from 'node:os';
import type { WsdConfig } from './config/load-config.js';
import { WsdError } from './errors.js';
import { adminServiceHandlers } from './api/admin-service.js';
import { BackupStore } from './content/backup-store.js';
import { workspaceGitStatus } from './content/git-status.js';
import { contentServiceHandlers } from './api/content-service.js';
import { GrpcServer } from './api/grpc-server.js';
import { listenFailure } from './api/listen-error.js';
import { ProbeServer } from './api/http-server.js';
import { healthCheckToken } from './health/health-check.js';
import { HealthMonitor } from './health/health-monitor.js';
import { contentInitializerToken } from './initializer/content-initializer.js';
import { InitializerRegistry } from './initializer/initializer-registry.js';
import { Kernel } from './kernel/kernel.js';
import { isWsdError } from './errors.js';
import type { Logger } from './observability/logger.js';
import { createMetricsRegistry, registerDiskMetrics } from './observability/metrics.js';
import { RecentFailures } from './observability/recent-failures.js';
import { gatherStatus } from './observability/status-report.js';
import { configureChildProcesses, endAllChildren, markerFor, sweepOrphans } from './process/child-processes.js';
import { makeFolders } from './fs/make-folders.js';
import { lockFolders } from './process/folder-lock.js';
import { diskGuardToken } from './kernel/core-tokens.js';
import type { WorkingAreaDiskGuard } from './health/disk-guard.js';
import { quotaStrategyToken } from './quota/quota-strategy.js';
import { storageBackendToken } from './storage/storage-backend.js';
import { wsdVersion } from './version.js';
import { WorkspaceService } from './workspace/workspace-service.js';

export interface RunningDaemon {
  kernel: Kernel;
  workspaces: WorkspaceService;
  /** Bound `host:port` of the probe/metrics endpoint. */
  httpAddress: string;
  /** Bound `host:port` of the gRPC API. */
  grpcAddress: string;
  /** Stops taking calls, lets in-flight work finish or safely abandons it, stops plugins. Idempotent. */
  stop(): Promise<void>;
}

/** How often the gRPC health service re-evaluates readiness. */
const healthIntervalMs = 5_000;
/** How often the disk guard reads the working area's free space between inits (one statfs). */
const diskGuardIntervalMs = 10_000;

/**
 * Starts everything for a validated config, in order: plugins (kernel) → workspace recovery from the state files →
 * gRPC API → probes. Anything that fails to start stops what had started.
 */
export async function startDaemon(config: WsdConfig, log: Logger): Promise<RunningDaemon> {
  const startedAt = new Date();
  // First of all: a second daemon on the same folders would take the first one's running inits for interrupted ones
  // and wipe them. Nothing, not even a plugin's start-up cleanup, runs before the folders are ours.
  const lock = await lockOwnFolders(config);
  const metrics = createMetricsRegistry({ version: wsdVersion });
  registerDiskMetrics(metrics, config.paths.workingArea);
  const kernel = new Kernel({ config, logger: log, metrics });
  try {
    await kernel.start();
  } catch (error) {
    await lock.release();
    throw error;
  }

  const cleanups: Array<() => Promise<void>> = [() => lock.release(), () => kernel.stop()];
  const unwind = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => log.error('stop step failed', { error: error as Error }));
  };
  try {
    // Before recovery wipes interrupted inits: children of a predecessor killed with -9 may still write into them.
    const marker = markerFor(config.paths.dataDir);
    await sweepOrphans(marker, { log });
    configureChildProcesses({ marker });
    cleanups.push(async () => void (await endAllChildren({ graceMs: 2_000 }))); // runs after workspaces.stop()
    const { workspaces: ws, backup } = config.root;
    // Resolved once: only root can give content to another user; everything below takes `owner` as it is.
    const root = process.getuid?.() === 0;
    const owner = ws.uid !== undefined && root ? { uid: ws.uid, gid: ws.gid ?? ws.uid } : undefined;
    if (ws.uid !== undefined && !root) log.warn('workspaces.uid ignored: wsd is not running as root', { uid: ws.uid });
    const storage = kernel.get(storageBackendToken);
    const initializers = new InitializerRegistry(kernel.get(contentInitializerToken));
    const quota = kernel.get(quotaStrategyToken);
    const failures = new RecentFailures();
    // Sampled on a timer too, so crossing the threshold is logged when it happens, not only at the next init.
    const diskGuard = kernel.get(diskGuardToken) as WorkingAreaDiskGuard;
    diskGuard.start(diskGuardIntervalMs);
    cleanups.push(async () => diskGuard.stop());
    const backups = new BackupStore(storage, log, {
      keep: backup.keep,
      compressionLevel: backup.compressionLevel,
      maxConcurrent: backup.maxConcurrent,
      extract: { ...(owner ? { owner } : {}), allowSpecialFiles: ws.allowSpecialFiles, preserveSetuid: ws.preserveSetuid },
      ...(backup.hmacKey ? { hmacKey: Buffer.from(backup.hmacKey, 'utf8') } : {}),
      acceptUnsignedManifests: backup.acceptUnsignedManifests,
      format: backup.format,
      cacheDir: path.join(config.paths.dataDir, 'backup-cache'),
    });
    const workspaces = new WorkspaceService({
      workingArea: config.paths.workingArea,
      stateDir: config.paths.stateDir,
      storage,
      quota,
      initializers,
      backups,
      gitStatus: (folder, record) => workspaceGitStatus(folder, record.initializer, initializers, owner),
      settings: {
        readyMarker: ws.readyMarker,
        backupWins: ws.backupWins,
        ...(owner ? { owner } : {}),
        periodic: { periodMs: backup.period, jitter: backup.jitter, retries: backup.retries, retryDelayMs: backup.retryDelay },
      },
      log,
      metrics,
      failures,
      diskGuard,
    });
    await workspaces.recover();
    cleanups.push(() => workspaces.stop());

    const monitor = new HealthMonitor(kernel.get(healthCheckToken), { metrics });
    let accepting = true;
    const running = () => accepting && kernel.running;

    const grpc = new GrpcServer({
      content: contentServiceHandlers(workspaces, log),
      admin: adminServiceHandlers({ workspaces, backups, plugins: () => kernel.statuses(), health: monitor, workingArea: config.paths.workingArea, version: wsdVersion }, log),
    });
    const grpcAddress = await grpc.listen(config.root.api, config.baseDir).catch((error: unknown) => {
      throw isWsdError(error) ? error : listenFailure(error, 'api.address', config.root.api.address);
    });
    cleanups.push(() => grpc.shutdown());
    const refreshHealth = async () => grpc.setServing(running() && (await monitor.report()).ready);
    await refreshHealth();
    const timer = setInterval(() => void refreshHealth().catch(() => {}), healthIntervalMs);
    timer.unref();
    cleanups.push(async () => clearInterval(timer));
    log.info('grpc listening', { address: grpcAddress, tls: Boolean(config.root.api.tls), mutualTls: Boolean(config.root.api.tls?.caFile) });

    const health = () => monitor.report();
    const status = () =>
      gatherStatus({
        node: os.hostname(),
        version: wsdVersion,
        startedAt,
        workingArea: config.paths.workingArea,
        running,
        health,
        plugins: () => kernel.statuses(),
        quota,
        workspaces,
        failures,
      });
    const probes = new ProbeServer({ metrics, running, health, ...(config.root.http.statusPage ? { status } : {}) });
    const httpAddress = await probes.listen(config.root.http.address).catch((error: unknown) => {
      throw listenFailure(error, 'http.address', config.root.http.address);
    });
    cleanups.push(() => probes.close());
    log.info('http listening', { address: httpAddress });

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        accepting = false; // readiness turns false first, so probes and the health service see the node leaving
        grpc.setServing(false);
        await unwind();
      })());
    return { kernel, workspaces, httpAddress, grpcAddress, stop };
  } catch (error) {
    await unwind();
    throw error;
  }
}

async function lockOwnFolders(config: WsdConfig) {
  const { dataDir, workingArea } = config.paths;
  for (const [folder, role] of [[workingArea, 'working area'], [dataDir, 'data folder']] as const) {
    await makeFolders(folder, 0o755).catch((error: Error) => {
      throw new WsdError('FAILED_PRECONDITION', `wsd cannot start: cannot create the ${role} ${folder}: ${error.message}`);
    });
  }
  return await lockFolders([
    { folder: dataDir, role: 'data folder' },
    { folder: workingArea, role: 'working area' },
  ]);
}
