import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Server, ServerCredentials, setLogger, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { RootConfig } from '../config/root-schema.js';
import { WsdError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { serviceConstructor } from './proto.js';
import { addReflectionToServer } from './reflection.js';

export const contentServiceName = 'wsdaemon.WorkspaceContentService';
export const adminServiceName = 'wsd.v1.AdminService';

/**
 * The gRPC endpoint: both wsd services, the standard `grpc.health.v1` service (reflecting readiness) and server
 * reflection. TLS or mutual TLS from config; plaintext only when `api.insecure` says so.
 */
export class GrpcServer {
  readonly #server = new Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  readonly #health = new HealthImplementation({ '': 'NOT_SERVING', [contentServiceName]: 'NOT_SERVING', [adminServiceName]: 'NOT_SERVING' });

  constructor(handlers: { content: UntypedServiceImplementation; admin: UntypedServiceImplementation }) {
    this.#server.addService(serviceConstructor(contentServiceName).service, handlers.content);
    this.#server.addService(serviceConstructor(adminServiceName).service, handlers.admin);
    this.#health.addToServer(this.#server);
    // v1 and v1alpha, answering from descriptors built from the .proto files (see reflection.ts), not proto-loader's.
    addReflectionToServer(this.#server);
  }

  /** Binds `api.address` and returns the bound `host:port`. */
  async listen(api: RootConfig['api'], baseDir: string): Promise<string> {
    const credentials = serverCredentials(api, baseDir);
    const port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(api.address, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
    });
    return `${api.address.slice(0, api.address.lastIndexOf(':'))}:${port}`;
  }

  setServing(serving: boolean): void {
    const status: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    for (const service of ['', contentServiceName, adminServiceName]) this.#health.setStatus(service, status);
  }

  /** Stops taking calls and waits up to `timeoutMs` for running ones, then cuts them. */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    this.setServing(false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, timeoutMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * grpc-js's own messages go through wsd's logger (by default it prints `E …` text lines on stderr): every log line
 * stays JSON. They are debug: each failure that matters also reaches wsd's code, which logs it with its context
 * (a bind failure, for one, is the daemon's `start failed` line).
 */
export function routeGrpcLogs(log: Logger): void {
  const grpcLog = log.child({ component: 'grpc-js' });
  const write = (severity: string) => (message?: unknown, ...rest: unknown[]) =>
    grpcLog.debug(String(message), { severity, ...(rest.length ? { details: rest.map(String) } : {}) });
  setLogger({ error: write('error'), info: write('info'), debug: write('debug') });
}

function serverCredentials(api: RootConfig['api'], baseDir: string): ServerCredentials {
  if (!api.tls) return ServerCredentials.createInsecure();
  const read = (file: string, field: string) => {
    try {
      return readFileSync(path.resolve(baseDir, file));
    } catch (error) {
      throw new WsdError('INVALID_ARGUMENT', `api.tls.${field}: cannot read ${file}: ${(error as Error).message}`, { field: `api.tls.${field}` });
    }
  };
  const ca = api.tls.caFile ? read(api.tls.caFile, 'caFile') : null;
  return ServerCredentials.createSsl(
    ca,
    [{ cert_chain: read(api.tls.certFile, 'certFile'), private_key: read(api.tls.keyFile, 'keyFile') }],
    Boolean(ca) && api.tls.requireClientCert,
  );
}
