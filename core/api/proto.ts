import path from 'node:path';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { packageRoot } from '../config/package-root.js';

/** The options the generated types in `generated/` were made with; server and client must use the same. */
export const protoLoaderOptions = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [] as string[],
};

export const protoDir = (): string => path.join(packageRoot(), 'proto');
export const protoFiles = ['wsdaemon/daemon.proto', 'wsd/v1/admin.proto'];

let cached: { definition: PackageDefinition; grpc: GrpcObject } | undefined;

/** The wsd protos, loaded once. */
export function wsdProtos(): { definition: PackageDefinition; grpc: GrpcObject } {
  if (!cached) {
    const definition = loadSync(protoFiles, { ...protoLoaderOptions, includeDirs: [protoDir()] });
    cached = { definition, grpc: loadPackageDefinition(definition) };
  }
  return cached;
}

export function serviceConstructor(fullName: 'wsdaemon.WorkspaceContentService' | 'wsd.v1.AdminService'): ServiceClientConstructor {
  let node: unknown = wsdProtos().grpc;
  for (const part of fullName.split('.')) node = (node as Record<string, unknown>)[part];
  return node as ServiceClientConstructor;
}
