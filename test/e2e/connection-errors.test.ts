import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { makeTestPki, type TestPki } from '../kit/certificates.js';
import { runWsd, startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';

/** A port on 127.0.0.1 that nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('wsd client: connection errors a person can act on', () => {
  let pki: TestPki;
  let plain: DaemonProcess;
  let mtls: DaemonProcess;

  before(async () => {
    const dir = tempDir('wsd-conn-');
    pki = makeTestPki(dir);
    const tlsApi = `  address: 127.0.0.1:0\n  tls:\n    certFile: ${pki.serverCert}\n    keyFile: ${pki.serverKey}\n    caFile: ${pki.caCert}\n`;
    const started = await Promise.allSettled([
      startDaemonProcess({ args: ['--config', testDaemonConfig(tempDir('wsd-conn-plain-'))] }),
      startDaemonProcess({ args: ['--config', testDaemonConfig(dir, '', tlsApi)] }),
    ]);
    // One that failed to start must not leave the other running.
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
      throw failed.reason;
    }
    [plain, mtls] = started.map((s) => (s as PromiseFulfilledResult<DaemonProcess>).value) as [DaemonProcess, DaemonProcess];
  });
  after(async () => {
    assert.equal(await plain?.stop(), 0);
    assert.equal(await mtls?.stop(), 0);
  });

  const failure = async (args: string[], expected: RegExp) => {
    const r = await runWsd(['client', 'exists', 'x', '--timeout', '20', ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    // No raw transport text: grpc-js's empty note, OpenSSL's error lines, or a message over several lines.
    assert.doesNotMatch(r.stderr, /Resolution note|SSL routines|:error:|openssl/);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  };

  it('says the connection was refused, naming the address and the flag that sets it', async () => {
    const port = await closedPort();
    await failure(['--address', `127.0.0.1:${port}`], new RegExp(`^UNAVAILABLE: cannot reach wsd at 127\\.0\\.0\\.1:${port}: connection refused: is the daemon running, and is --address \\(or WSD_ADDRESS\\) right\\?\\n$`));
  });

  it('says no connection came about within --timeout when the address accepts but never speaks gRPC', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const r = await runWsd(['client', 'exists', 'x', '--timeout', '1', '--address', `127.0.0.1:${port}`]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `DEADLINE_EXCEEDED: cannot reach wsd at 127.0.0.1:${port}: no connection within the --timeout\n`);
    } finally {
      silent.close();
    }
  });

  it('tells plaintext and TLS apart, both ways', async () => {
    await failure(['--address', mtls.grpcAddress], /the server speaks TLS and this client used plaintext: pass --tls-ca/);
    await failure(['--address', plain.grpcAddress, '--tls-ca', pki.caCert], /the server does not speak TLS .*: leave out --tls-ca/);
  });

  it('names the certificate problem: untrusted server, wrong name, missing or refused client certificate', async () => {
    await failure(['--address', mtls.grpcAddress, '--tls-ca', pki.clientCert], /the server's certificate is not signed by a CA in --tls-ca /);
    await failure(['--address', mtls.grpcAddress, '--tls-ca', pki.caCert, '--tls-server-name', 'other.example'], /not issued for other\.example \(it names IP Address:127\.0\.0\.1, DNS:localhost\): pass --tls-server-name/);
    await failure(['--address', mtls.grpcAddress, '--tls-ca', pki.caCert], /the server requires a client certificate \(mutual TLS\): pass --tls-cert and --tls-key/);
    await failure(['--address', mtls.grpcAddress, '--tls-ca', pki.caCert, '--tls-cert', pki.strangerCert, '--tls-key', pki.strangerKey], /the server refused the client certificate --tls-cert .*stranger\.crt/);
    const ok = await runWsd(['client', 'exists', 'x', '--address', mtls.grpcAddress, '--tls-ca', pki.caCert, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey]);
    assert.deepEqual([ok.code, ok.stdout], [0, 'workspace x does not exist\n']);
  });
});
