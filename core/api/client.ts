import { readFileSync } from 'node:fs';
import { credentials, Metadata, type CallOptions, type ChannelCredentials, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import type { AdminServiceClient } from './generated/wsd/v1/AdminService.js';
import type { ExportBackupChunk__Output } from './generated/wsd/v1/ExportBackupChunk.js';
import type { ExportBackupRequest } from './generated/wsd/v1/ExportBackupRequest.js';
import type { ListBackupsRequest } from './generated/wsd/v1/ListBackupsRequest.js';
import type { ListBackupsResponse__Output } from './generated/wsd/v1/ListBackupsResponse.js';
import type { ListWorkspacesResponse__Output } from './generated/wsd/v1/ListWorkspacesResponse.js';
import type { NodeStatus__Output } from './generated/wsd/v1/NodeStatus.js';
import type { GetPluginStatusResponse__Output } from './generated/wsd/v1/GetPluginStatusResponse.js';
import type { WorkspaceDetail__Output } from './generated/wsd/v1/WorkspaceDetail.js';
import type { InitWorkspaceResult__Output } from './generated/wsd/v1/InitWorkspaceResult.js';
import type { GetOperationProgressResponse__Output } from './generated/wsd/v1/GetOperationProgressResponse.js';
import type { GitStatus__Output } from './generated/contentservice/GitStatus.js';
import type { InitWorkspaceRequest } from './generated/wsdaemon/InitWorkspaceRequest.js';
import type { WorkspaceContentServiceClient } from './generated/wsdaemon/WorkspaceContentService.js';
import { serviceConstructor } from './proto.js';

export type { InitWorkspaceRequest } from './generated/wsdaemon/InitWorkspaceRequest.js';
export type { WorkspaceInitializer } from './generated/contentservice/WorkspaceInitializer.js';

export interface WsdClientOptions {
  /** `host:port` of the daemon's gRPC API. */
  address: string;
  /**
   * TLS: CA to trust, and a client certificate + key for mutual TLS, as files or as their content (`ca`, `cert`,
   * `key` win over the files). Plaintext when omitted.
   */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; ca?: Buffer; cert?: Buffer; key?: Buffer; serverName?: string };
  /** Per-call deadline in ms (default: none; InitWorkspace of a large repository can take minutes). */
  timeoutMs?: number;
}

/**
 * A typed, promise-based client for both wsd services. Errors are grpc-js `ServiceError`s: `code` is the gRPC
 * status, `details` the daemon's message, and the `wsd-field` metadata names the request field at fault.
 */
export class WsdClient {
  readonly #content: WorkspaceContentServiceClient;
  readonly #admin: AdminServiceClient;
  readonly #timeoutMs: number | undefined;

  constructor(options: WsdClientOptions) {
    const creds = channelCredentials(options.tls);
    const channelOptions = options.tls?.serverName ? { 'grpc.ssl_target_name_override': options.tls.serverName } : {};
    const Content = serviceConstructor('wsdaemon.WorkspaceContentService');
    const Admin = serviceConstructor('wsd.v1.AdminService');
    this.#content = new Content(options.address, creds, channelOptions) as unknown as WorkspaceContentServiceClient;
    this.#admin = new Admin(options.address, creds, channelOptions) as unknown as AdminServiceClient;
    this.#timeoutMs = options.timeoutMs;
  }

  initWorkspace(request: InitWorkspaceRequest): Promise<void> {
    return this.#call(this.#content, 'InitWorkspace', request).then(() => undefined);
  }

  /**
   * InitWorkspace through the admin service: the same operation, answered with the content source and the
   * warnings (what did not go as asked). Needs a wsd daemon (Gitpod's ws-daemon has no admin service).
   */
  initWorkspaceWithResult(request: InitWorkspaceRequest): Promise<InitWorkspaceResult__Output> {
    return this.#call(this.#admin, 'InitWorkspace', request) as Promise<InitWorkspaceResult__Output>;
  }

  /** The running or last operations on a workspace, for progress displays (poll it while an operation runs). */
  getOperationProgress(id: string, options: { timeoutMs?: number } = {}): Promise<GetOperationProgressResponse__Output> {
    return this.#call(this.#admin, 'GetOperationProgress', { id }, options.timeoutMs) as Promise<GetOperationProgressResponse__Output>;
  }

  waitForInit(id: string): Promise<void> {
    return this.#call(this.#content, 'WaitForInit', { id }).then(() => undefined);
  }

  async isWorkspaceExists(id: string): Promise<boolean> {
    return ((await this.#call(this.#content, 'IsWorkspaceExists', { id })) as { exists: boolean }).exists;
  }

  async takeSnapshot(id: string, options: { returnImmediately?: boolean } = {}): Promise<string> {
    return ((await this.#call(this.#content, 'TakeSnapshot', { id, return_immediately: options.returnImmediately ?? false })) as { url: string }).url;
  }

  async backupWorkspace(id: string): Promise<string> {
    return ((await this.#call(this.#content, 'BackupWorkspace', { id })) as { url: string }).url;
  }

  async disposeWorkspace(id: string, options: { backup?: boolean; backupLogs?: boolean } = {}): Promise<GitStatus__Output | null> {
    const response = await this.#call(this.#content, 'DisposeWorkspace', { id, backup: options.backup ?? false, backup_logs: options.backupLogs ?? false });
    return (response as { git_status: GitStatus__Output | null }).git_status;
  }

  listWorkspaces(): Promise<ListWorkspacesResponse__Output> {
    return this.#call(this.#admin, 'ListWorkspaces', {}) as Promise<ListWorkspacesResponse__Output>;
  }

  describeWorkspace(id: string): Promise<WorkspaceDetail__Output> {
    return this.#call(this.#admin, 'DescribeWorkspace', { id }) as Promise<WorkspaceDetail__Output>;
  }

  listBackups(request: ListBackupsRequest): Promise<ListBackupsResponse__Output> {
    return this.#call(this.#admin, 'ListBackups', request) as Promise<ListBackupsResponse__Output>;
  }

  /**
   * ExportBackup: a stream of messages, the first naming the archive, the others its bytes in order. Read it to its
   * end: only a stream that ends without an error (a `ServiceError`, e.g. DATA_LOSS) delivered the whole archive.
   */
  exportBackup(request: ExportBackupRequest): ClientReadableStream<ExportBackupChunk__Output> {
    const options: CallOptions = this.#timeoutMs ? { deadline: Date.now() + this.#timeoutMs } : {};
    return this.#admin.ExportBackup(request, new Metadata(), options);
  }

  getPluginStatus(): Promise<GetPluginStatusResponse__Output> {
    return this.#call(this.#admin, 'GetPluginStatus', {}) as Promise<GetPluginStatusResponse__Output>;
  }

  getNodeStatus(): Promise<NodeStatus__Output> {
    return this.#call(this.#admin, 'GetNodeStatus', {}) as Promise<NodeStatus__Output>;
  }

  close(): void {
    this.#content.close();
    this.#admin.close();
  }

  #call(client: Client, method: string, request: object, timeoutMs = this.#timeoutMs): Promise<unknown> {
    const options: CallOptions = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
    return new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, Function>)[method]!;
      fn.call(client, request, new Metadata(), options, (error: ServiceError | null, response: unknown) => (error ? reject(error) : resolve(response)));
    });
  }
}

function channelCredentials(tls: WsdClientOptions['tls']): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  const read = (content: Buffer | undefined, file: string | undefined) => content ?? (file ? readFileSync(file) : null);
  return credentials.createSsl(read(tls.ca, tls.caFile), read(tls.key, tls.keyFile), read(tls.cert, tls.certFile));
}

/** The field a failed call named (`wsd-field` trailer), if any. */
export function errorField(error: ServiceError): string | undefined {
  const value = error.metadata?.get('wsd-field')[0];
  return value === undefined ? undefined : String(value);
}
