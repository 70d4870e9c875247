import path from 'node:path';
import { createRequire } from 'node:module';
import { credentials, loadPackageDefinition, type ChannelCredentials, type Client, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { packageRoot } from '../../core/config/package-root.js';

/** A client class for `service` (e.g. `grpc.health.v1.Health`) from a .proto file, loaded as given. */
export function clientFromProto(file: string, service: string, includeDirs: string[] = []): ServiceClientConstructor {
  const definition = loadSync(file, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs });
  let node: unknown = loadPackageDefinition(definition);
  for (const part of service.split('.')) node = (node as Record<string, unknown>)[part];
  return node as ServiceClientConstructor;
}

export const fixtureProto = (name: string): string => path.join(packageRoot(), 'test', 'fixtures', name);

/** The server reflection proto that ships with @grpc/reflection (the standard v1 service). */
export function reflectionProto(): { file: string; includeDir: string } {
  const main = createRequire(import.meta.url).resolve('@grpc/reflection');
  const includeDir = path.join(path.dirname(main), '..', 'proto');
  return { file: path.join(includeDir, 'grpc', 'reflection', 'v1', 'reflection.proto'), includeDir };
}

/** Calls a unary method with a callback-style grpc-js client, as a promise. */
export function callUnary<T>(client: Client, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>)[method]!.call(client, request, (error: Error | null, response: T) => (error ? reject(error) : resolve(response)));
  });
}

export const insecure = (): ChannelCredentials => credentials.createInsecure();
