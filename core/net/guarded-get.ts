import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { WsdError, isWsdError } from '../errors.js';
import { guardedLookup, type AddressPolicy } from './address-policy.js';

/**
 * A small GET for a URL from a request (a one-time-secret URL): http(s) only, every address checked against
 * `policy` on the connection itself (DNS rebinding cannot bypass it), no redirects, a bounded body and an idle
 * timeout. Resolves with status and body; errors are WsdErrors (`PERMISSION_DENIED` for a denied address,
 * `UNAVAILABLE` for network trouble) whose text never holds the URL (it may be a secret itself).
 */
export function guardedGet(url: string, options: { policy: AddressPolicy; what: string; field: string; maxBytes?: number; timeoutMs?: number; signal?: AbortSignal }): Promise<{ status: number; body: string }> {
  const { policy, what, field } = options;
  const maxBytes = options.maxBytes ?? 64 * 1024;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(new WsdError('INVALID_ARGUMENT', `${field} is not a URL`, { field }));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return Promise.reject(new WsdError('INVALID_ARGUMENT', `${field} must be an http: or https: URL`, { field }));
  const refuse = () => new WsdError('PERMISSION_DENIED', `${field} leads to an address that is not allowed for ${what}`, { field });
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !policy.allows(host)) return Promise.reject(refuse());
  return new Promise((resolve, reject) => {
    const send = parsed.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send(parsed, { agent: false, lookup: guardedLookup(policy, refuse), ...(options.signal ? { signal: options.signal } : {}) }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          response.destroy();
          reject(new WsdError('FAILED_PRECONDITION', `${field}: the answer is larger than ${maxBytes} bytes`, { field }));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', (error) => reject(new WsdError('UNAVAILABLE', `${field}: ${error.message}`, { field })));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    request.setTimeout(options.timeoutMs ?? 30_000, () => request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (isWsdError(error) || options.signal?.aborted) return reject(error);
      reject(new WsdError('UNAVAILABLE', `${field}: ${error.code ?? error.message}`, { field }));
    });
    request.end();
  });
}
