import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TestPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from an unrelated CA. */
  strangerCert: string;
  strangerKey: string;
}

/** A throw-away CA with a server certificate for 127.0.0.1/localhost and client certificates, made with openssl. */
export function makeTestPki(dir: string): TestPki {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string) => {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
      '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`));
  };
  const leaf = (name: string, caName: string, ext: string) => {
    writeFileSync(file(`${name}.ext`), ext);
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`,
      '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${caName}.crt`), '-CAkey', file(`${caName}.key`), '-CAcreateserial',
      '-days', '2', '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`));
  };
  ca('test-ca');
  ca('stranger-ca');
  leaf('server', 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'test-ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    caCert: file('test-ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    strangerCert: file('stranger.crt'),
    strangerKey: file('stranger.key'),
  };
}
