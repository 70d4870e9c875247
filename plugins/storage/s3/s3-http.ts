import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { Client, type ClientOptions } from 'minio';
import type { CredentialProvider } from 'minio/dist/esm/CredentialProvider.mjs';
import type { S3Endpoint } from './s3-config.js';
import { S3ServiceError, S3TimeoutError } from './s3-errors.js';
import { parseErrorDocument } from './s3-xml.js';

export type S3Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface S3RequestOptions {
  method: S3Method;
  /** The object's full name in the bucket (prefix included); omitted for bucket requests. */
  objectName?: string;
  /** Query string without `?`, values already URI-escaped. */
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

/** What the transport needs to know about the request it is asked to send. */
interface RequestContext {
  signal: AbortSignal | undefined;
  timeoutMs: number;
  streaming: boolean;
}

// The minio client builds and signs requests but takes neither an AbortSignal nor a timeout per request. Each request
// runs inside this context, and the transport the client is given (below) reads it when it opens the connection.
const requestContext = new AsyncLocalStorage<RequestContext>();

/** Every status, so that the minio client hands every answer back to us instead of parsing errors its own way. */
const anyStatus = Array.from({ length: 500 }, (_, i) => i + 100);

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
 * One S3 endpoint as storage/s3 talks to it: the minio client signs (SigV4, with the credentials of the configured
 * source) and sends each request through a keep-alive agent of our own; every answer comes back as it is, and an
 * unexpected one becomes an {@link S3ServiceError} carrying the status and S3 error code. No retries here (the
 * client's own are off: they would resend conditional writes and consumed bodies); the backend decides.
 */
export class S3Http {
  readonly client: Client;
  readonly #agent: http.Agent;
  readonly #timeoutMs: number;
  readonly region: string;
  /** The bucket every request addresses. */
  readonly bucket: string;

  constructor(options: S3HttpOptions) {
    const { endpoint } = options;
    this.#timeoutMs = options.timeoutMs;
    this.region = options.region;
    this.bucket = options.bucket;
    this.#agent = endpoint.useSSL
      ? new https.Agent({ keepAlive: true, maxSockets: options.maxSockets, ...(options.ca ? { ca: [...rootCertificates, options.ca] } : {}) })
      : new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    // An agent's `ca` replaces Node's bundled roots: they are kept, so caFile adds a CA instead of narrowing trust.
    const base = endpoint.useSSL ? https : http;
    this.client = new Client({
      endPoint: endpoint.host,
      port: endpoint.port,
      useSSL: endpoint.useSSL,
      pathStyle: endpoint.pathStyle,
      region: options.region,
      // The same class at run time; the package's typings for `minio` and for its ESM files are separate declarations.
      credentialsProvider: options.credentials as unknown as ClientOptions['credentialsProvider'],
      transportAgent: this.#agent,
      transport: contextTransport(base),
      retryOptions: { disableRetry: true },
    });
  }

  /** Sends one request; resolves with the response (body unread) when its status is expected. */
  async request(options: S3RequestOptions): Promise<http.IncomingMessage> {
    const { method, objectName, query, headers, body, expect, signal, streaming } = options;
    signal?.throwIfAborted();
    const context: RequestContext = { signal, timeoutMs: this.#timeoutMs, streaming: streaming ?? false };
    const response = await requestContext.run(context, () =>
      this.client.makeRequestAsync(
        {
          method,
          bucketName: this.bucket,
          ...(objectName !== undefined ? { objectName } : {}),
          ...(query ? { query } : {}),
          headers: { ...headers },
        },
        body ?? '',
        anyStatus,
        this.region,
      ),
    );
    if (expect.includes(response.statusCode!)) return response;
    throw await serviceError(response);
  }

  /** Sends one request and reads the whole (small, XML) answer. */
  async requestText(options: S3RequestOptions): Promise<{ response: http.IncomingMessage; text: string }> {
    const response = await this.request(options);
    return { response, text: (await readBody(response, 16 * 1024 * 1024)).toString('utf8') };
  }

  close(): void {
    this.#agent.destroy();
  }
}

function contextTransport(base: typeof http | typeof https): { request: typeof http.request } {
  const request = (options: http.RequestOptions, callback?: (response: http.IncomingMessage) => void): http.ClientRequest => {
    const context = requestContext.getStore();
    const req = base.request(context?.signal ? { ...options, signal: context.signal } : options, callback);
    if (context) {
      const { timeoutMs } = context;
      req.setTimeout(timeoutMs, () => req.destroy(new S3TimeoutError(timeoutMs)));
      if (context.streaming) req.once('response', () => req.setTimeout(0));
    }
    return req;
  };
  return { request: request as typeof http.request };
}

async function serviceError(response: http.IncomingMessage): Promise<S3ServiceError> {
  const status = response.statusCode ?? 0;
  const text = (await readBody(response, maxErrorBody).catch(() => Buffer.alloc(0))).toString('utf8');
  const parsed = parseErrorDocument(text);
  // HEAD answers have no body; MinIO names the error in a header, AWS not at all (the status says enough).
  const headerCode = header(response, 'x-minio-error-code') ?? header(response, 'x-amz-error-code');
  const code = parsed?.code || headerCode || statusCode(status);
  const message = parsed?.message || header(response, 'x-minio-error-desc')?.replace(/^"|"$/g, '') || response.statusMessage || '';
  return new S3ServiceError(status, code, message, parsed?.requestId ?? header(response, 'x-amz-request-id'));
}

function statusCode(status: number): string {
  return { 301: 'PermanentRedirect', 400: 'BadRequest', 403: 'AccessDenied', 404: 'NotFound', 412: 'PreconditionFailed', 416: 'InvalidRange', 503: 'SlowDown' }[status] ?? '';
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
  response.resume();
  if (response.complete) return;
  await new Promise<void>((resolve) => {
    response.once('end', resolve);
    response.once('error', () => resolve());
    response.once('close', resolve);
  });
}

