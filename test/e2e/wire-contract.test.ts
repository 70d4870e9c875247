import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { callUnary, clientFromProto, fixtureProto, insecure, reflectionProto } from '../kit/grpc-fixtures.js';
import { tempDir } from '../kit/temp-dir.js';

describe('wire contract, health and reflection', () => {
  let dir: string;
  let daemon: DaemonProcess;
  let wire: Client;

  before(async () => {
    dir = tempDir('wsd-wire-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    const WireClient = clientFromProto(fixtureProto('wire-contract.proto'), 'wsdaemon.WorkspaceContentService');
    wire = new WireClient(daemon.grpcAddress, insecure());
  });
  after(async () => {
    wire?.close();
    assert.equal(await daemon?.stop(), 0);
  });

  it('serves every RPC to a client built from an independent copy of the contract', async () => {
    const call = <T>(method: string, request: object) => callUnary<T>(wire, method, request);
    await call('InitWorkspace', { id: 'wire-1', metadata: { owner: 'bob', meta_id: 'wm' }, initializer: { composite: { initializer: [{ empty: {} }] } }, storage_quota_bytes: 1 << 30 });
    await call('WaitForInit', { id: 'wire-1' });
    assert.deepEqual(await call('IsWorkspaceExists', { id: 'wire-1' }), { exists: true });
    assert.deepEqual(await call('IsWorkspaceExists', { id: 'wire-2' }), { exists: false });
    writeFileSync(path.join(dir, 'data', 'workspaces', 'wire-1', 'f.txt'), 'wire\n');
    const snapshot = await call<{ url: string }>('TakeSnapshot', { id: 'wire-1', return_immediately: false });
    assert.match(snapshot.url, /^bob\/workspaces\/wm\/snapshots\//);
    const backup = await call<{ url: string }>('BackupWorkspace', { id: 'wire-1' });
    assert.match(backup.url, /^bob\/workspaces\/wm\/backups\//);
    const disposed = await call<{ git_status: unknown }>('DisposeWorkspace', { id: 'wire-1', backup: true, backup_logs: false });
    assert.ok('git_status' in disposed);
    await call('InitWorkspace', { id: 'wire-2', metadata: { owner: 'bob', meta_id: 'wm' }, initializer: { snapshot: { snapshot: snapshot.url } } });
    await call('InitWorkspace', { id: 'wire-3', metadata: { owner: 'bob', meta_id: 'wm' }, initializer: { backup: {} } });
    await call('DisposeWorkspace', { id: 'wire-2' });
    await call('DisposeWorkspace', { id: 'wire-3' });
    await assert.rejects(call('WaitForInit', { id: 'wire-9' }), (e: ServiceError) => e.code === status.NOT_FOUND);
  });

  it('answers grpc.health.v1.Health/Check with SERVING when ready', async () => {
    const Health = clientFromProto(fixtureProto('health.proto'), 'grpc.health.v1.Health');
    const health = new Health(daemon.grpcAddress, insecure());
    try {
      for (const service of ['', 'wsdaemon.WorkspaceContentService', 'wsd.v1.AdminService']) {
        assert.deepEqual(await callUnary(health, 'Check', { service }), { status: 'SERVING' });
      }
      await assert.rejects(callUnary(health, 'Check', { service: 'no.such.Service' }), (e: ServiceError) => e.code === status.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  it('lists both services through server reflection', async () => {
    const { file, includeDir } = reflectionProto();
    const Reflection = clientFromProto(file, 'grpc.reflection.v1.ServerReflection', [includeDir]);
    const reflection = new Reflection(daemon.grpcAddress, insecure());
    try {
      const stream = (reflection as unknown as { ServerReflectionInfo(): ClientDuplexStream<object, { list_services_response?: { service: Array<{ name: string }> } }> }).ServerReflectionInfo();
      const response = await new Promise<{ list_services_response?: { service: Array<{ name: string }> } }>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
        stream.write({ list_services: '*' });
      });
      stream.end();
      const names = response.list_services_response!.service.map((s) => s.name);
      assert.ok(names.includes('wsdaemon.WorkspaceContentService'), names.join(', '));
      assert.ok(names.includes('wsd.v1.AdminService'), names.join(', '));
    } finally {
      reflection.close();
    }
  });
});
