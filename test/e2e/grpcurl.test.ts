import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ClientDuplexStream } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { packageRoot } from '../../core/config/package-root.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { clientFromProto, insecure, reflectionProto } from '../kit/grpc-fixtures.js';
import { cachedTool } from '../kit/servers/server-process.js';
import { tempDir } from '../kit/temp-dir.js';

/**
 * Server reflection as a real generic client sees it: grpcurl (Go, strict descriptor parser) lists, describes and
 * invokes wsd's services knowing nothing but the server's address. Each description must equal the one grpcurl
 * makes when it compiles the .proto files itself (comments aside: reflection serves no source info).
 */

const root = packageRoot();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs grpcurl; a missing binary fails the calling test (never a silent skip). */
function grpcurl(args: string[], stdin?: string): Promise<Run> {
  let grpcurlBin: string;
  try {
    grpcurlBin = cachedTool('grpcurl');
  } catch (error) {
    assert.fail((error as Error).message);
  }
  return new Promise((resolve, reject) => {
    const child = execFile(grpcurlBin, args, { timeout: 30_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as unknown as number) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}

async function ok(args: string[]): Promise<string> {
  const run = await grpcurl(args);
  assert.equal(run.code, 0, `grpcurl ${args.join(' ')} exited ${run.code}:\n${run.stderr}${run.stdout}`);
  return run.stdout;
}

const withoutComments = (text: string) =>
  text
    .split('\n')
    .filter((line) => !line.trim().startsWith('//'))
    .join('\n');

/** Every message and enum (nested ones too) declared in the given files, by full name, from the sources. */
function declaredTypes(includeDir: string, files: string[]): string[] {
  const protoRoot = new protobuf.Root();
  protoRoot.resolvePath = (_origin, target) => path.join(includeDir, target);
  protoRoot.loadSync(files, { keepCase: true });
  const names: string[] = [];
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum) names.push(nested.fullName.slice(1));
      if (nested instanceof protobuf.Namespace) walk(nested);
    }
  };
  walk(protoRoot);
  return names.sort();
}

describe('server reflection with grpcurl', () => {
  let dir: string;
  let daemon: DaemonProcess | undefined;
  let address: string;
  const protoDir = path.join(root, 'proto');
  const wsdFiles = ['wsdaemon/daemon.proto', 'wsd/v1/admin.proto', 'content-service-api/initializer.proto'];
  const fromSources = ['-import-path', protoDir, ...wsdFiles.flatMap((f) => ['-proto', f])];
  const healthDir = path.resolve(healthProtoPath, '..', '..', '..');
  const healthFromSources = ['-import-path', healthDir, '-proto', path.relative(healthDir, healthProtoPath)];

  before(async () => {
    dir = tempDir('wsd-grpcurl-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    address = daemon.grpcAddress;
  });
  after(async () => {
    if (daemon) assert.equal(await daemon.stop(), 0);
  });

  it('lists every service, and each one’s methods', async () => {
    const services = (await ok(['-plaintext', address, 'list'])).trim().split('\n').sort();
    assert.deepEqual(services, [
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'wsd.v1.AdminService',
      'wsdaemon.WorkspaceContentService',
    ]);
    const methods = (await ok(['-plaintext', address, 'list', 'wsdaemon.WorkspaceContentService'])).trim().split('\n').sort();
    assert.deepEqual(
      methods,
      ['BackupWorkspace', 'DisposeWorkspace', 'InitWorkspace', 'IsWorkspaceExists', 'TakeSnapshot', 'WaitForInit'].map((m) => `wsdaemon.WorkspaceContentService.${m}`),
    );
    assert.match(await ok(['-plaintext', address, 'list', 'wsd.v1.AdminService']), /^wsd\.v1\.AdminService\.GetNodeStatus$/m);
  });

  it('describes every service as grpcurl compiles it from the .proto files', async () => {
    const all = await ok(['-plaintext', address, 'describe']);
    for (const service of ['wsdaemon.WorkspaceContentService', 'wsd.v1.AdminService', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']) {
      assert.match(all, new RegExp(`^${service.replace(/\./g, '\\.')} is a service:`, 'm'));
    }
    for (const service of ['wsdaemon.WorkspaceContentService', 'wsd.v1.AdminService']) {
      const reflected = await ok(['-plaintext', address, 'describe', service]);
      assert.equal(reflected, withoutComments(await ok([...fromSources, 'describe', service])), service);
    }
    const health = await ok(['-plaintext', address, 'describe', 'grpc.health.v1.Health']);
    assert.equal(health, withoutComments(await ok([...healthFromSources, 'describe', 'grpc.health.v1.Health'])));
    assert.match(await ok(['-plaintext', address, 'describe', 'wsdaemon.WorkspaceContentService.InitWorkspace']), /rpc InitWorkspace \( \.wsdaemon\.InitWorkspaceRequest \) returns \( \.wsdaemon\.InitWorkspaceResponse \)/);
  });

  it('describes every message and enum of the wsd protos as grpcurl compiles them from the .proto files', async () => {
    const types = declaredTypes(protoDir, wsdFiles);
    for (const expected of ['wsdaemon.InitWorkspaceRequest', 'wsdaemon.IsWorkspaceExistsResponse', 'contentservice.WorkspaceInitializer', 'contentservice.GitInitializer', 'wsd.v1.WorkspaceDetail']) {
      assert.ok(types.includes(expected), expected);
    }
    for (const type of types) {
      const reflected = await ok(['-plaintext', address, 'describe', type]);
      assert.equal(reflected, withoutComments(await ok([...fromSources, 'describe', type])), type);
    }
    for (const type of declaredTypes(healthDir, [path.relative(healthDir, healthProtoPath)])) {
      assert.equal(await ok(['-plaintext', address, 'describe', type]), withoutComments(await ok([...healthFromSources, 'describe', type])), type);
    }
    // The details a lax descriptor gets wrong, spelled out.
    assert.match(await ok(['-plaintext', address, 'describe', 'contentservice.GitConfig']), /^ {2}map<string, string> custom_config = 1;$/m);
    assert.match(await ok(['-plaintext', address, 'describe', 'contentservice.GitConfig.CustomConfigEntry']), /is the entry type for a map field:\nmap<string, string> custom_config = 1;/);
    assert.match(await ok(['-plaintext', address, 'describe', 'wsdaemon.InitWorkspaceRequest']), /^ {2}reserved 4, 5, 6, 9;$/m);
    assert.match(await ok(['-plaintext', address, 'describe', 'wsdaemon.InitWorkspaceRequest']), /^ {2}\.contentservice\.WorkspaceInitializer initializer = 3;$/m);
    assert.match(await ok(['-plaintext', address, 'describe', 'wsd.v1.WorkspaceDetail']), /^ {2}optional int64 quota_used_bytes = 4;$/m);
    assert.match(await ok(['-plaintext', address, 'describe', 'contentservice.WorkspaceInitializer']), /oneof spec \{/);
  });

  it('invokes RPCs from JSON and prints the responses as JSON', async () => {
    const service = 'wsdaemon.WorkspaceContentService';
    const init = await ok(['-plaintext', '-d', JSON.stringify({ id: 'gc-1', metadata: { owner: 'bob', metaId: 'm1' }, initializer: { empty: {} } }), address, `${service}/InitWorkspace`]);
    assert.deepEqual(JSON.parse(init), {});
    assert.deepEqual(JSON.parse(await ok(['-plaintext', '-d', '{"id":"gc-1"}', address, `${service}/WaitForInit`])), {});
    assert.deepEqual(JSON.parse(await ok(['-plaintext', '-d', '{"id":"gc-1"}', address, `${service}/IsWorkspaceExists`])), { exists: true });
    assert.deepEqual(JSON.parse(await ok(['-plaintext', '-emit-defaults', '-d', '{"id":"gc-none"}', address, `${service}/IsWorkspaceExists`])), { exists: false });
    // Request from stdin, as scripts pipe it.
    const piped = await grpcurl(['-plaintext', '-d', '@', address, `${service}/IsWorkspaceExists`], '{"id": "gc-1"}');
    assert.equal(piped.code, 0, piped.stderr);
    assert.deepEqual(JSON.parse(piped.stdout), { exists: true });

    const detail = JSON.parse(await ok(['-plaintext', '-d', '{"id":"gc-1"}', address, 'wsd.v1.AdminService/DescribeWorkspace'])) as { summary: Record<string, unknown>; initializer: string };
    assert.equal(detail.summary.id, 'gc-1');
    assert.equal(detail.summary.state, 'WORKSPACE_STATE_READY');
    assert.equal(detail.summary.metaId, 'm1');
    assert.equal(detail.initializer, 'empty');
    assert.deepEqual(JSON.parse(await ok(['-plaintext', '-d', '{"service":"wsdaemon.WorkspaceContentService"}', address, 'grpc.health.v1.Health/Check'])), { status: 'SERVING' });

    const missing = await grpcurl(['-plaintext', '-d', '{"id":"gc-none"}', address, `${service}/WaitForInit`]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Code: NotFound/);
    const unknownField = await grpcurl(['-plaintext', '-d', '{"id":"gc-1","nope":1}', address, `${service}/IsWorkspaceExists`]);
    assert.notEqual(unknownField.code, 0, 'grpcurl checks the JSON against the reflected message');
    assert.match(unknownField.stderr, /nope/);
  });

  it('answers v1alpha reflection with the same fully qualified descriptors (older clients)', async () => {
    const { file, includeDir } = reflectionProto();
    const alphaFile = path.join(path.dirname(path.dirname(file)), 'v1alpha', 'reflection.proto');
    const Reflection = clientFromProto(alphaFile, 'grpc.reflection.v1alpha.ServerReflection', [includeDir]);
    const client = new Reflection(address, insecure());
    try {
      type Response = { file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_message: string } };
      const stream = (client as unknown as { ServerReflectionInfo(): ClientDuplexStream<object, Response> }).ServerReflectionInfo();
      const response = await new Promise<Response>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
        stream.write({ file_containing_symbol: 'wsdaemon.WorkspaceContentService' });
      });
      stream.end();
      assert.ok(response.file_descriptor_response, JSON.stringify(response.error_response));
      const files = response.file_descriptor_response.file_descriptor_proto.map((bytes) => descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(bytes)) as { name: string; dependency?: string[]; messageType?: Array<{ name: string; field?: Array<{ name: string; typeName?: string }> }> });
      assert.deepEqual(files.map((f) => f.name).sort(), ['content-service-api/initializer.proto', 'wsdaemon/daemon.proto']);
      const daemonFile = files.find((f) => f.name === 'wsdaemon/daemon.proto')!;
      assert.deepEqual(daemonFile.dependency, ['content-service-api/initializer.proto']);
      const request = daemonFile.messageType!.find((m) => m.name === 'InitWorkspaceRequest')!;
      assert.equal(request.field!.find((f) => f.name === 'initializer')!.typeName, '.contentservice.WorkspaceInitializer');
    } finally {
      client.close();
    }
  });
});
