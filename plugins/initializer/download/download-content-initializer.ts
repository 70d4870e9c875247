import { rm, rename } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AddressPolicy, createExclusive, DigestStream, guardedLookup, insideFolder, isWsdError, makeRealFolders, redactUrl, retry, scrubSecrets, transientHttpStatus, WsdError, type ContentInitializer, type InitializeOptions, type InitializeResult, type Logger, type DownloadSpec } from '../../../core/plugin-api.js';

export type { DownloadSpec } from '../../../core/plugin-api.js';

export interface DownloadOptions {
  attempts: number;
  initialRetryDelayMs: number;
  /** CIDRs never connected to (unless in `allowedNetworks`). Default: `defaultDeniedNetworks` of core/net. */
  deniedNetworks?: readonly string[];
  /** CIDRs always permitted, even inside `deniedNetworks`. Default: none. */
  allowedNetworks?: readonly string[];
  /** Largest file accepted, in bytes. Default 16 GiB. */
  maxBytes?: number;
  /** Longest a connection may stay silent (connecting, awaiting the answer, between body chunks). Default 5 min. */
  timeoutMs?: number;
}

/** Redirect hops followed per file, as browsers and curl do (curl's default is higher; 5 covers CDNs and presigning). */
export const maxRedirects = 5;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const configPath = 'initializers.download';

interface FileJob {
  url: URL;
  /** `scheme://host[:port]/path` of the requested URL: the only form of it that reaches a message or a log. */
  shownUrl: string;
  target: string;
  sha256: string;
  /** `initializer.download.files[i]` */
  field: string;
}

/**
 * Downloads files into the workspace: each to `target_location/file_path` (both kept inside the folder), written to
 * a temp file, checked against its `sha256:<hex>` digest, then renamed into place.
 *
 * Every field of the spec is untrusted, and wsd runs as root inside the cluster network, so:
 * - only `http:` and `https:` URLs are fetched, through `node:http(s)` with a DNS lookup that refuses
 *   (`PERMISSION_DENIED`) any address of the policy's denied networks — loopback, link-local (cloud metadata) by
 *   default — before connecting; literal IP hosts and every redirect hop (at most {@link maxRedirects}) are checked
 *   the same way;
 * - a file larger than `maxBytes` fails with `RESOURCE_EXHAUSTED`;
 * - a digest mismatch says only that the content does not match (never the digest that was computed: that would
 *   let a caller learn the hash of anything the node can reach);
 * - URLs appear in messages and logs only as `scheme://host[:port]/path` (presigned URLs carry secrets in the query).
 *
 * Transient failures (network, 5xx, 429, an idle connection) are retried with doubling delays; nothing else is.
 */
export class DownloadContentInitializer implements ContentInitializer<DownloadSpec> {
  readonly kind = 'download';
  readonly #attempts: number;
  readonly #initialRetryDelayMs: number;
  readonly #policy: AddressPolicy;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;

  /** Throws when a network of `deniedNetworks` / `allowedNetworks` is not a CIDR (the plugin's schema checks first). */
  constructor(options: DownloadOptions) {
    this.#attempts = options.attempts;
    this.#initialRetryDelayMs = options.initialRetryDelayMs;
    this.#policy = new AddressPolicy({ denied: options.deniedNetworks, allowed: options.allowedNetworks });
    this.#maxBytes = options.maxBytes ?? 16 * 1024 ** 3;
    this.#timeoutMs = options.timeoutMs ?? 5 * 60_000;
  }

  async initialize({ spec, dir, signal, log, user }: InitializeOptions<DownloadSpec>): Promise<InitializeResult> {
    signal.throwIfAborted();
    const started = Date.now();
    const base = insideFolder(dir, spec.target_location ?? '', 'initializer.download.target_location');
    // Every file is validated before the first byte is fetched.
    const files = (spec.files ?? []).map((file, i): FileJob => {
      const field = `initializer.download.files[${i}]`;
      const url = parseUrl(file.url, field);
      if (!file.file_path) throw new WsdError('INVALID_ARGUMENT', `${field}.file_path is required`, { field: `${field}.file_path` });
      const digest = /^sha256:([0-9a-f]{64})$/i.exec(file.digest ?? '');
      if (!digest) throw new WsdError('INVALID_ARGUMENT', `${field}.digest must be sha256:<64 hex digits>`, { field: `${field}.digest` });
      const target = insideFolder(base, file.file_path, `${field}.file_path`);
      // `.` or `a/..` name the folder itself: its temp file would land beside the workspace folder.
      if (target === base || target === dir) throw new WsdError('INVALID_ARGUMENT', `${field}.file_path must name a file, not the folder`, { field: `${field}.file_path` });
      return { url, shownUrl: redactUrl(url), target, sha256: digest[1]!.toLowerCase(), field };
    });
    let bytes = 0;
    for (const file of files) {
      const size = await retry(() => this.#attempt(file, dir, signal, log, user), {
        attempts: this.#attempts,
        initialDelayMs: this.#initialRetryDelayMs,
        signal,
        onRetry: (error, { attempt, delayMs }) => log.warn('download failed; retrying', { field: file.field, url: file.shownUrl, attempt, delayMs, error: (error as Error).message }),
      });
      bytes += size;
      log.info('downloaded', { file: path.relative(dir, file.target), url: file.shownUrl, bytes: size });
    }
    return { source: 'from-other', stats: [{ kind: this.kind, durationMs: Date.now() - started, bytes }] };
  }

  /** One try at one file: fetch (following redirects), stream through size limit and digest into a temp file, rename. */
  async #attempt(file: FileJob, dir: string, signal: AbortSignal, log: Logger, user?: { uid: number; gid: number }): Promise<number> {
    const response = await this.#get(file, signal, log);
    const tmp = `${file.target}.wsd-download`;
    const tooLarge = () => new WsdError('RESOURCE_EXHAUSTED', `${file.field}.url: ${file.shownUrl} is larger than ${this.#maxBytes} bytes (${configPath}.maxBytes)`, { field: `${file.field}.url` });
    const declared = Number(response.headers['content-length']);
    const digest = new DigestStream();
    let created = false;
    try {
      if (Number.isFinite(declared) && declared > this.#maxBytes) throw tooLarge();
      // Folders only now, once the address was allowed and the server answered: a refused request writes nothing.
      const blocked = await makeRealFolders(dir, path.dirname(file.target), user);
      if (blocked) throw new WsdError('FAILED_PRECONDITION', `${file.field}.file_path: ${blocked} exists and is not a folder`, { field: `${file.field}.file_path` });
      // Exclusive create, no link following: content cloned before (composite) may have planted a symlink here.
      const handle = await createExclusive(tmp, user);
      created = true;
      await pipeline(response, byteLimit(this.#maxBytes, tooLarge), digest, handle.createWriteStream(), { signal });
    } catch (error) {
      response.destroy();
      // Only a temp file this attempt made: before makeRealFolders succeeded, its folder may be a planted symlink.
      if (created) await rm(tmp, { force: true });
      if (signal.aborted || isWsdError(error)) throw error;
      // The workspace side failed (a folder that vanished, a full or read-only disk): no retry can fix it, and the
      // URL is not to blame. Only what went wrong on the wire is worth another try.
      const local = localFileFailure(error);
      if (local) throw new WsdError(local, `${file.field}.file_path: writing ${file.target.slice(dir.length + 1) || file.target} failed: ${describe(error)}`, { field: `${file.field}.file_path` });
      throw new WsdError('UNAVAILABLE', `${file.field}: downloading ${file.shownUrl} failed: ${describe(error)}`, { field: `${file.field}.url` });
    }
    if (digest.sha256 !== file.sha256) {
      await rm(tmp, { force: true });
      // Deliberately without the computed digest: it would reveal the hash of whatever the URL reaches.
      throw new WsdError('FAILED_PRECONDITION', `${file.field}: content of ${file.shownUrl} does not match ${file.field}.digest`, { field: `${file.field}.digest` });
    }
    try {
      await rename(tmp, file.target); // replaces a file or a symlink at the target itself, never writes through it
    } catch (error) {
      await rm(tmp, { force: true });
      throw new WsdError('FAILED_PRECONDITION', `${file.field}.file_path names something that cannot be replaced by a file (${describe(error)})`, { field: `${file.field}.file_path` });
    }
    return digest.size;
  }

  /** The successful (2xx) response for `file.url`, after following redirects; every hop is checked against the policy. */
  async #get(file: FileJob, signal: AbortSignal, log: Logger): Promise<IncomingMessage> {
    let url = file.url;
    for (let hop = 0; ; hop++) {
      const response = await this.#request(url, file, signal, log);
      const status = response.statusCode ?? 0;
      if (redirectStatuses.has(status)) {
        response.destroy();
        const location = response.headers.location;
        if (!location) throw new WsdError('FAILED_PRECONDITION', `${file.field}: downloading ${file.shownUrl} failed: HTTP ${status} without a Location`, { field: `${file.field}.url` });
        if (hop >= maxRedirects) throw new WsdError('FAILED_PRECONDITION', `${file.field}: downloading ${file.shownUrl} failed: more than ${maxRedirects} redirects`, { field: `${file.field}.url` });
        const next = URL.canParse(location, url.href) ? new URL(location, url) : undefined;
        if (!next || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
          throw new WsdError('FAILED_PRECONDITION', `${file.field}: downloading ${file.shownUrl} failed: redirected to something other than an http: or https: URL`, { field: `${file.field}.url` });
        }
        url = next;
        continue;
      }
      if (status < 200 || status > 299) {
        response.destroy();
        const code = transientHttpStatus(status) ? 'UNAVAILABLE' : 'FAILED_PRECONDITION';
        throw new WsdError(code, `${file.field}: downloading ${file.shownUrl} failed: HTTP ${status}`, { field: `${file.field}.url` });
      }
      return response;
    }
  }

  /** One GET of `url`, resolved when the response head arrives. Denied addresses fail before any connection. */
  #request(url: URL, file: FileJob, signal: AbortSignal, log: Logger): Promise<IncomingMessage> {
    // The same message whether the first hop or a redirect was refused, and nothing about the address: the caller
    // learns only that the URL leads somewhere the node does not connect to for requests. The operator's log says where.
    const refuse = (host: string, address: string) => {
      log.warn('download refused: address not allowed', { field: `${file.field}.url`, url: file.shownUrl, host, address, network: this.#policy.deniedBy(address) });
      return new WsdError('PERMISSION_DENIED', `${file.field}.url: ${file.shownUrl} leads to an address that is not allowed by ${configPath}.deniedNetworks`, { field: `${file.field}.url` });
    };
    // Node connects to a literal IP host without calling `lookup`: check it here.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && !this.#policy.allows(host)) return Promise.reject(refuse(host, host));
    return new Promise((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      // No keep-alive agent: a pooled socket would skip `lookup`, and requests are few and large.
      let response: IncomingMessage | undefined;
      const request = send(url, { agent: false, lookup: guardedLookup(this.#policy, refuse), signal, headers: { 'user-agent': 'wsd', accept: '*/*' } }, (res) => {
        // Until the pipeline listens, a reset or the idle timeout must not surface as an unhandled 'error' (which
        // would end the daemon); the pipeline still sees the stream as errored and fails the attempt.
        res.on('error', () => {});
        resolve((response = res));
      });
      // An idle connection (connecting, awaiting the head, or mid-body) fails this attempt; the retry loop decides.
      request.setTimeout(this.#timeoutMs, () => {
        const idle = Object.assign(new Error(`no data for ${this.#timeoutMs / 1000}s`), { code: 'ETIMEDOUT' });
        response?.destroy(idle);
        request.destroy(idle);
      });
      request.on('error', (error) => {
        if (signal.aborted || isWsdError(error)) return reject(error);
        reject(new WsdError('UNAVAILABLE', `${file.field}: downloading ${file.shownUrl} failed: ${describe(error)}`, { field: `${file.field}.url` }));
      });
      request.end();
    });
  }

  /** Download URLs may be presigned: persisted without userinfo, query or fragment. */
  redact(spec: DownloadSpec): DownloadSpec {
    return { ...spec, ...(spec.files ? { files: spec.files.map((file) => (file.url ? { ...file, url: redactUrl(file.url) } : file)) } : {}) };
  }
}

/** The request's URL, or INVALID_ARGUMENT: missing, not a URL, or not http(s). The value is never echoed. */
/** File-system errno codes: a write into the workspace failed, not the transfer. */
const localErrnoCodes = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS', 'EEXIST', 'ELOOP', 'ENAMETOOLONG', 'ENOSPC', 'EDQUOT', 'EFBIG']);

function localFileFailure(error: unknown): 'FAILED_PRECONDITION' | 'RESOURCE_EXHAUSTED' | undefined {
  const { code, errno } = (error ?? {}) as { code?: string; errno?: number };
  // Node 20 reports EDQUOT (errno 122) as code UNKNOWN.
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' || errno === -122) return 'RESOURCE_EXHAUSTED';
  return code && localErrnoCodes.has(code) ? 'FAILED_PRECONDITION' : undefined;
}

function parseUrl(value: string | undefined, field: string): URL {
  if (!value) throw new WsdError('INVALID_ARGUMENT', `${field}.url is required`, { field: `${field}.url` });
  if (!URL.canParse(value)) throw new WsdError('INVALID_ARGUMENT', `${field}.url is not a valid URL`, { field: `${field}.url` });
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WsdError('INVALID_ARGUMENT', `${field}.url must be an http: or https: URL, not ${url.protocol}`, { field: `${field}.url` });
  }
  return url;
}

/** A library error for a message: its text with any URL in it redacted (no cause is kept: its text is not). */
function describe(error: unknown): string {
  return scrubSecrets(error instanceof Error ? error.message : String(error));
}

/** A pass-through that fails with `error()` once more than `max` bytes went through. */
function byteLimit(max: number, error: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(seen > max ? error() : null, chunk);
    },
  });
}
