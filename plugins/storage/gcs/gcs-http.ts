import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { scrubSecrets } from '../../../core/plugin-api.js';

/**
 * The wire under the GCS plugin: one keep-alive agent per backend (with the configured CA), an idle timeout per
 * request, the caller's AbortSignal, and credentials from the SDK's auth client. Requests go out through node:http
 * rather than the SDK's request layer because that layer (teeny-request) takes no per-client agent: a custom CA
 * could only be installed process-wide, and a request could not be aborted.
 */
export interface GcsRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  signal?: AbortSignal;
  /** The idle timeout of this request, when not the transport's. */
  timeoutMs?: number;
}

export interface GcsResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

/** Supplies the Authorization header (Google auth library); throws when the credentials cannot be had. */
export type AuthHeaders = () => Promise<Record<string, string>>;

/** An HTTP answer the plugin did not want: status, the service's reason (`notFound`, `conditionNotMet`…) and text. */
export class GcsHttpError extends Error {
  override readonly name = 'GcsHttpError';
  constructor(
    readonly status: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The credentials could not be turned into a token (refused by the token service, missing, unreadable). */
export class GcsAuthError extends Error {
  override readonly name = 'GcsAuthError';
  constructor(cause: unknown) {
    super(authErrorText(cause), { cause });
  }
}

/** No byte was sent or received for the idle timeout. */
export class GcsTimeoutError extends Error {
  override readonly name = 'GcsTimeoutError';
  readonly code = 'ETIMEDOUT';
}

export interface GcsTransportOptions {
  /** The endpoint's origin; requests to it carry credentials, others (a session URI elsewhere) do not. */
  endpoint: URL;
  /** Extra trusted CAs (PEM) for https endpoints, on top of the system ones. */
  ca?: string[];
  requestTimeoutMs: number;
  /** Omitted: anonymous requests. */
  authHeaders?: AuthHeaders;
}

export class GcsTransport {
  readonly #options: GcsTransportOptions;
  readonly #agent: http.Agent;

  constructor(options: GcsTransportOptions) {
    this.#options = options;
    this.#agent =
      options.endpoint.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 64, ...(options.ca ? { ca: options.ca } : {}) })
        : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  /** Sends the request and resolves with the response once its headers arrived, whatever its status. */
  async send(request: GcsRequest): Promise<GcsResponse> {
    const { url, method, body, signal } = request;
    const sameOrigin = url.origin === this.#options.endpoint.origin;
    let auth: Record<string, string> = {};
    if (sameOrigin && this.#options.authHeaders) {
      try {
        auth = await this.#options.authHeaders();
      } catch (error) {
        throw new GcsAuthError(error);
      }
    }
    signal?.throwIfAborted();
    const headers: Record<string, string> = {
      'user-agent': 'wsd-storage-gcs',
      ...request.headers,
      ...auth,
      'content-length': String(body?.length ?? 0),
    };
    if (method === 'GET' || (method === 'DELETE' && !body)) delete headers['content-length'];
    const client = url.protocol === 'https:' ? https : http;
    const timeoutMs = request.timeoutMs ?? this.#options.requestTimeoutMs;
    return await new Promise<GcsResponse>((resolve, reject) => {
      const req = client.request(url, { method, headers, agent: this.#agent, ...(signal ? { signal } : {}) }, (res) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      // An idle timeout, not a deadline: a 32 MiB chunk on a slow link may take long but always moves.
      req.setTimeout(timeoutMs, () => req.destroy(new GcsTimeoutError(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Sends the request and reads a JSON answer; any status outside `ok` (default 2xx) becomes a GcsHttpError. */
  async json<T>(request: GcsRequest, ok: (status: number) => boolean = (s) => s >= 200 && s < 300): Promise<{ status: number; headers: IncomingHttpHeaders; data: T }> {
    const response = await this.send(request);
    if (!ok(response.status)) throw await httpError(response);
    const text = (await readText(response.body, 16 * 1024 * 1024)).trim();
    try {
      return { status: response.status, headers: response.headers, data: (text ? JSON.parse(text) : {}) as T };
    } catch {
      throw new GcsHttpError(response.status, 'invalidResponse', `the service answered HTTP ${response.status} with a body that is not JSON`);
    }
  }

  /** Ends idle keep-alive connections (stop). */
  close(): void {
    this.#agent.destroy();
  }
}

/** The error a non-wanted response stands for, with the service's reason and message (bounded, scrubbed). */
export async function httpError(response: GcsResponse): Promise<GcsHttpError> {
  const text = await readText(response.body, 64 * 1024).catch(() => '');
  let reason: string | undefined;
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string; errors?: Array<{ reason?: string; message?: string }> } | string; error_description?: string };
    if (parsed && typeof parsed.error === 'object') {
      reason = parsed.error.errors?.[0]?.reason;
      message = parsed.error.message ?? parsed.error.errors?.[0]?.message ?? message;
    }
  } catch {
    // Not JSON (a proxy's page): the text itself, cut short.
  }
  return new GcsHttpError(response.status, reason, cut(message) || (response.body.statusMessage ?? ''));
}

/** Reads a response body as text, at most `limit` bytes (the rest is discarded). */
export async function readText(body: IncomingMessage, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size < limit) parts.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Drains and frees a response whose body is not needed. */
export function discard(response: GcsResponse): void {
  response.body.resume();
  response.body.on('error', () => {});
}

function cut(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return scrubSecrets(oneLine.length > 300 ? `${oneLine.slice(0, 300)}…` : oneLine);
}

/**
 * What an auth failure says, without what it carries: the auth library's errors hold the request that failed
 * (with the subject token or the signed assertion in its body), so only the service's error code and description
 * and the library's own message are kept.
 */
function authErrorText(cause: unknown): string {
  const error = cause as { message?: unknown; response?: { status?: unknown; data?: unknown } };
  const data = error?.response?.data as { error?: unknown; error_description?: unknown } | undefined;
  if (data && typeof data === 'object' && typeof data.error === 'string') {
    const description = typeof data.error_description === 'string' ? `: ${data.error_description}` : '';
    return cut(`token service answered HTTP ${String(error.response?.status)} ${data.error}${description}`);
  }
  return cut(typeof error?.message === 'string' ? error.message : String(cause));
}
