import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { Client, type ClientOptions } from 'minio';
import type { CredentialProvider } from 'minio/dist/esm/CredentialProvider.mjs';
import { signV4 } from 'minio/dist/esm/signing.mjs';
import type { S3Endpoint } from './s3-config.js';
import { S3ServiceError, S3TimeoutError } from './s3-errors.js';
import { parseErrorDocument } from './s3-xml.js';

export type S3Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface S3RequestOptions {
  method: S3Method;
  /** The object's full name in the bucket (prefix included); omitted for bucket requests. */
  objectName?: string;
  /** Query string without `?`, values already URI-escaped (see {@link uriEscape}). */
  query?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Statuses that mean success; any other becomes an {@link S3ServiceError}. */
  expect: readonly number[];
  signal?: AbortSignal | undefined;
  /**
   * The response body is handed to a reader that may pause it for long (a get): the idle timeout stops once the
   * headers are in, and the reader watches for stalls itself.
   */
  streaming?: boolean;
}

/** Error bodies are small XML documents; a longer one is cut (it is only read for its code and message). */
const maxErrorBody = 64 * 1024;

export interface S3HttpOptions {
  endpoint: S3Endpoint;
  region: string;
  bucket: string;
  credentials: CredentialProvider;
  timeoutMs: number;
  /** PEM text of extra CAs to trust (https endpoints). */
  ca?: string | undefined;
  maxSockets: number;
}

/**
 * One bucket of one S3 endpoint, as storage/s3 talks to it. Requests are signed with the minio client's SigV4
 * signer and the credentials of the configured source, and sent here through a keep-alive agent of our own, each
 * with the caller's AbortSignal and an idle timeout. The minio client's request path takes neither, and with its
 * retries off it turns every 408/429/5xx answer into a bare "Request failed after 0 retries" (with them on it would
 * resend conditional writes), so it is used only to presign URLs. Every unexpected answer becomes an
 * {@link S3ServiceError} with the status and S3 error code; retrying is the backend's decision.
 */
export class S3Http {
  readonly region: string;
  readonly bucket: string;
  readonly #endpoint: S3Endpoint;
  readonly #credentials: CredentialProvider;
  readonly #agent: http.Agent;
  readonly #transport: typeof http | typeof https;
  readonly #timeoutMs: number;
  readonly #hostHeader: string;
  #presigner: Client | undefined;

  constructor(options: S3HttpOptions) {
    const { endpoint } = options;
    this.#endpoint = endpoint;
    this.region = options.region;
    this.bucket = options.bucket;
    this.#credentials = options.credentials;
    this.#timeoutMs = options.timeoutMs;
    this.#transport = endpoint.useSSL ? https : http;
    // An agent's `ca` replaces Node's bundled roots: they are kept, so caFile adds a CA instead of narrowing trust.
    this.#agent = endpoint.useSSL
      ? new https.Agent({ keepAlive: true, maxSockets: options.maxSockets, ...(options.ca ? { ca: [...rootCertificates, options.ca] } : {}) })
      : new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
    const defaultPort = endpoint.useSSL ? 443 : 80;
    const bucketHost = endpoint.pathStyle ? host : `${options.bucket}.${host}`;
    this.#hostHeader = endpoint.port === defaultPort ? bucketHost : `${bucketHost}:${endpoint.port}`;
  }

  /** Sends one request; resolves with the response (body unread) when its status is expected. */
  async request(options: S3RequestOptions): Promise<http.IncomingMessage> {
    const { method, objectName, query, body, expect, signal, streaming } = options;
    signal?.throwIfAborted();
    const credentials = await this.#credentials.getCredentials();
    signal?.throwIfAborted();
    const path = this.#path(objectName) + (query ? `?${query}` : '');
    const payload = body ?? '';
    // Over https the payload is not hashed into the signature (TLS protects it); over http it is, so a body changed
    // on the way is refused.
    const payloadHash = this.#endpoint.useSSL ? 'UNSIGNED-PAYLOAD' : createHash('sha256').update(payload).digest('hex');
    const date = new Date();
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
    headers.host = this.#hostHeader;
    headers['x-amz-date'] = amzDate(date);
    headers['x-amz-content-sha256'] = payloadHash;
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    if (method === 'PUT' || method === 'POST' || method === 'DELETE') headers['content-length'] = String(Buffer.byteLength(payload));
    headers.authorization = signV4(
      { protocol: this.#endpoint.useSSL ? 'https:' : 'http:', method, path, headers },
      credentials.accessKey,
      credentials.secretKey,
      this.region,
      date,
      payloadHash,
    );
    headers['user-agent'] = 'wsd-storage-s3';
    const response = await this.#send({ method, path, headers }, payload, signal, streaming ?? false);
    if (expect.includes(response.statusCode!)) return response;
    throw await serviceError(response);
  }

  /** Sends one request and reads the whole (small, XML) answer. */
  async requestText(options: S3RequestOptions): Promise<{ response: http.IncomingMessage; text: string }> {
    const response = await this.request(options);
    return { response, text: (await readBody(response, 16 * 1024 * 1024)).toString('utf8') };
  }

  /** A presigned GET URL, made by the minio client (same endpoint, credentials and addressing). */
  async presignGet(objectName: string, expiresInSeconds: number): Promise<string> {
    this.#presigner ??= new Client({
      endPoint: this.#endpoint.host,
      port: this.#endpoint.port,
      useSSL: this.#endpoint.useSSL,
      pathStyle: this.#endpoint.pathStyle,
      region: this.region,
      // The same class at run time; the package's typings for `minio` and for its ESM files are separate declarations.
      credentialsProvider: this.#credentials as unknown as ClientOptions['credentialsProvider'],
    });
    return this.#presigner.presignedGetObject(this.bucket, objectName, expiresInSeconds);
  }

  close(): void {
    this.#agent.destroy();
  }

  #path(objectName: string | undefined): string {
    const object = objectName === undefined ? '' : `/${uriEscape(objectName).replace(/%2F/g, '/')}`;
    return this.#endpoint.pathStyle ? `/${this.bucket}${object}` : object || '/';
  }

  #send(
    request: { method: string; path: string; headers: Record<string, string> },
    payload: Buffer | string,
    signal: AbortSignal | undefined,
    streaming: boolean,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.#transport.request({
        host: this.#endpoint.host,
        port: this.#endpoint.port,
        method: request.method,
        path: request.path,
        headers: request.headers,
        agent: this.#agent,
        ...(signal ? { signal } : {}),
      });
      const timeoutMs = this.#timeoutMs;
      // Socket inactivity: no byte sent or received for this long, while connecting, sending or awaiting the answer.
      req.setTimeout(timeoutMs, () => req.destroy(new S3TimeoutError(timeoutMs)));
      req.once('response', (response) => {
        if (streaming) req.setTimeout(0);
        resolve(response);
      });
      req.once('error', reject);
      req.end(payload);
    });
  }
}

/** URI-escapes a path segment or query value the way SigV4 canonicalizes it (RFC 3986 unreserved kept). */
export function uriEscape(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `20261129T041800Z` */
function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

async function serviceError(response: http.IncomingMessage): Promise<S3ServiceError> {
  const status = response.statusCode ?? 0;
  const text = (await readBody(response, maxErrorBody).catch(() => Buffer.alloc(0))).toString('utf8');
  const parsed = parseErrorDocument(text);
  // HEAD answers have no body; MinIO names the error in a header, AWS not at all (the status says enough).
  const headerCode = header(response, 'x-minio-error-code') ?? header(response, 'x-amz-error-code');
  const code = parsed?.code || headerCode || codeOfStatus(status);
  const message = parsed?.message || header(response, 'x-minio-error-desc')?.replace(/^"|"$/g, '') || response.statusMessage || '';
  return new S3ServiceError(status, code, message, parsed?.requestId ?? header(response, 'x-amz-request-id'));
}

function codeOfStatus(status: number): string {
  const codes: Record<number, string> = { 301: 'PermanentRedirect', 400: 'BadRequest', 403: 'AccessDenied', 404: 'NotFound', 412: 'PreconditionFailed', 416: 'InvalidRange', 503: 'SlowDown' };
  return codes[status] ?? '';
}

export function header(response: http.IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a response body, keeping at most `limit` bytes (the rest is drained, so the connection can be reused). */
export async function readBody(response: http.IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (size < limit) chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(chunks);
}

/** Drains and discards a body (keeps the connection reusable). */
export async function discardBody(response: http.IncomingMessage): Promise<void> {
  await readBody(response, 0);
}
