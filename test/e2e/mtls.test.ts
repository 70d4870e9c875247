import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { WsdClient } from '../../core/api/client.js';
import { makeTestPki, type TestPki } from '../kit/certificates.js';
import { runWsd, startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';

describe('mutual TLS', () => {
  let pki: TestPki;
  let daemon: DaemonProcess;

  before(async () => {
    const dir = tempDir('wsd-mtls-');
    pki = makeTestPki(dir);
    const api = `  address: 127.0.0.1:0\n  tls:\n    certFile: ${pki.serverCert}\n    keyFile: ${pki.serverKey}\n    caFile: ${pki.caCert}\n`;
    const config = testDaemonConfig(dir, '', api);
    daemon = await startDaemonProcess({ args: ['--config', config] });
  });
  after(async () => {
    assert.equal(await daemon?.stop(), 0);
  });

  const attempt = async (tls: ConstructorParameters<typeof WsdClient>[0]['tls']) => {
    const client = new WsdClient({ address: daemon.grpcAddress, ...(tls ? { tls } : {}), timeoutMs: 5000 });
    try {
      return await client.isWorkspaceExists('anything');
    } finally {
      client.close();
    }
  };

  it('serves a client with a certificate from the configured CA', async () => {
    assert.equal(await attempt({ caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey }), false);
  });

  it('rejects a client without a certificate, one from another CA, and plaintext', async () => {
    const refused = (e: ServiceError) => e.code === status.UNAVAILABLE;
    await assert.rejects(attempt({ caFile: pki.caCert }), refused);
    await assert.rejects(attempt({ caFile: pki.caCert, certFile: pki.strangerCert, keyFile: pki.strangerKey }), refused);
    await assert.rejects(attempt(undefined), refused);
  });

  it('works from the CLI with TLS flags', async () => {
    const result = await runWsd(['client', '--address', daemon.grpcAddress, '--tls-ca', pki.caCert, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey, 'exists', 'ws-x']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'workspace ws-x does not exist\n');
    const denied = await runWsd(['client', '--address', daemon.grpcAddress, '--tls-ca', pki.caCert, '--timeout', '5', 'exists', 'ws-x']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^UNAVAILABLE: /m);
    assert.doesNotMatch(denied.stderr, /DeprecationWarning/);
  });
});
