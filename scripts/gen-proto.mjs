#!/usr/bin/env node
// Generates TypeScript types for the .proto files under proto/ into core/api/generated/ (never edited by hand,
// not committed). The generated files import each other without extensions, so the folder is marked CommonJS;
// they hold types only and emit no code.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'core', 'api', 'generated');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const bin = path.join(root, 'node_modules', '@grpc', 'proto-loader', 'build', 'bin', 'proto-loader-gen-types.js');
const result = spawnSync(
  process.execPath,
  [bin, '--keepCase', '--longs=Number', '--enums=String', '--defaults', '--oneofs', '--grpcLib=@grpc/grpc-js',
    `--includeDirs=${path.join(root, 'proto')}`, `--outDir=${out}`, 'wsdaemon/daemon.proto', 'wsd/v1/admin.proto'],
  { stdio: 'inherit', cwd: root },
);
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n');
