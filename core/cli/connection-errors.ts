import { isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { ClientOptions } from './client-options.js';

/** How long the diagnosis may talk to the server after a failed call. */
const probeTimeoutMs = 3000;

/**
 * A sentence a person can act on for a call that never reached the daemon, or undefined when `details` is not a
 * connection failure (the daemon's own errors are printed as they are). grpc-js reports these as UNAVAILABLE (or
 * DEADLINE_EXCEEDED while waiting for a connection) with raw text: "Last error: …" holding an OpenSSL line, an
 * empty "Resolution note:", or only "Failed to connect". Where the text says nothing, one TLS handshake with the
 * same settings finds out which side expected what.
 */
export async function explainConnectionFailure(code: 'UNAVAILABLE' | 'DEADLINE_EXCEEDED' | string, details: string, options: ClientOptions): Promise<string | undefined> {
  const where = `cannot reach wsd at ${options.address}`;
  if (code === 'DEADLINE_EXCEEDED') {
    // grpc-js names the peer once a connection carried the call: then the daemon was reached and is still working.
    if (/remote_addr=/.test(details)) {
      return `no answer from wsd at ${options.address} within the --timeout; the daemon goes on with the operation (an init, backup or dispose is not cancelled): see wsd client describe`;
    }
    if (!/LB pick|name resolution|waiting_for_connection/i.test(details)) return undefined;
    const cause = await probe(options);
    return `${where}: no connection within the --timeout${cause ? `; ${cause}` : ''}`;
  }
  if (code !== 'UNAVAILABLE') return undefined;
  if (/^Name resolution failed/i.test(details)) return `${where}: the host name does not resolve (check --address or WSD_ADDRESS)`;
  if (!/^No connection established|^Connection dropped|^Failed to connect/i.test(details)) return undefined;
  const last = /Last error: (.*?)(?: \(\d{4}-[^)]*\))?\.? Resolution note:/s.exec(details)?.[1] ?? details;
  const known = classify(last, options);
  if (known) return `${where}: ${known}`;
  const probed = await probe(options);
  return `${where}: ${probed ?? cleanText(last)}`;
}

/** What a raw grpc-js / Node / OpenSSL error text means, in terms of the flags a person can change. */
function classify(text: string, options: ClientOptions): string | undefined {
  const ca = options.tls?.caFile ? `--tls-ca ${options.tls.caFile}` : 'the trusted CAs (--tls-ca)';
  if (/ECONNREFUSED/.test(text)) return 'connection refused: is the daemon running, and is --address (or WSD_ADDRESS) right?';
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return 'the host name does not resolve (check --address or WSD_ADDRESS)';
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(text)) return 'the host is unreachable (check --address or WSD_ADDRESS, and the network)';
  if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long|http request/i.test(text)) {
    return 'the server does not speak TLS (its api.tls is not set): leave out --tls-ca, --tls-cert and --tls-key';
  }
  const altnames = /Host: (.*?)\.? is not in the cert's altnames: (.*?)\.?$/m.exec(text);
  if (altnames || /ALTNAME_INVALID|does not match certificate/i.test(text)) {
    return `the server's certificate is not issued for ${altnames?.[1] ?? 'this address'}${altnames ? ` (it names ${altnames[2]})` : ''}: pass --tls-server-name with one of its names`;
  }
  if (/unable to verify|self[- ]signed certificate|unable to get (local )?issuer|certificate signature failure/i.test(text)) {
    return `the server's certificate is not signed by a CA in ${ca}`;
  }
  if (/certificate has expired|certificate is not yet valid/i.test(text)) return `the server's certificate ${/expired/.test(text) ? 'has expired' : 'is not valid yet'}`;
  if (/certificate required/i.test(text)) return 'the server requires a client certificate (mutual TLS): pass --tls-cert and --tls-key';
  if (/alert (unknown ca|bad certificate|certificate unknown|decrypt error)/i.test(text)) return refusedClientCertificate(options);
  return undefined;
}

function refusedClientCertificate(options: ClientOptions): string {
  return options.tls?.certFile
    ? `the server refused the client certificate --tls-cert ${options.tls.certFile}: it is not signed by a CA the server trusts (api.tls.caFile)`
    : 'the server requires a client certificate (mutual TLS): pass --tls-cert and --tls-key';
}

/**
 * One TLS handshake with the client's settings, to tell apart what grpc-js reports only as "Failed to connect":
 * a TLS server met with plaintext, a client certificate refused after the handshake (TLS 1.3 servers close the
 * connection instead of failing the handshake). Undefined when the handshake does not explain the failure.
 */
function probe(options: ClientOptions): Promise<string | undefined> {
  const colon = options.address.lastIndexOf(':');
  const host = options.address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(options.address.slice(colon + 1));
  if (!host || !Number.isInteger(port)) return Promise.resolve(undefined);
  const tls = options.tls;
  const serverName = tls?.serverName ?? (isIP(host) ? undefined : host);
  const settings: ConnectionOptions = {
    host,
    port,
    ALPNProtocols: ['h2'],
    ...(serverName ? { servername: serverName } : {}),
    // Plaintext client: only whether the server answers TLS at all matters, not whom it is.
    ...(tls ? { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) } : { rejectUnauthorized: false }),
  };
  return new Promise((resolve) => {
    let handshake = false;
    const socket = tlsConnect(settings);
    const done = (answer: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), probeTimeoutMs);
    socket.once('secureConnect', () => {
      handshake = true;
      if (!tls) done('the server speaks TLS and this client used plaintext: pass --tls-ca with the CA that signed its certificate (and --tls-cert/--tls-key if it asks for client certificates)');
    });
    // A server that accepts the client says hello (its HTTP/2 settings): then the handshake explains nothing.
    socket.once('data', () => done(undefined));
    socket.once('error', (error: Error & { code?: string }) => done(tls ? classify(`${error.code ?? ''} ${error.message}`, options) : undefined));
    socket.once('close', () => done(handshake && tls ? refusedClientCertificate(options) : undefined));
  });
}

/** An error text without OpenSSL's source positions and hex codes and without grpc-js's empty notes. */
export function cleanText(text: string): string {
  return text
    .replace(/[0-9A-F]{8,}:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):[^\n]*/g, '$1')
    .replace(/\s*Resolution note:\s*$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}
