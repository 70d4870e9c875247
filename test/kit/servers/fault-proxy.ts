import http from 'node:http';
import type net from 'node:net';

/** One request as the proxy saw it. */
export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/bucket/key?uploadId=…` */
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Status of the answer the client got (or the server gave, for `forward-then-reset`); unset while pending. */
  status?: number;
}

/**
 * What the proxy does with a request:
 * - `forward` (or undefined): pass it to the server and its answer back;
 * - `{ status, body? }`: answer it itself, without the server seeing it;
 * - `reset`: close the client's connection without an answer, the server never seeing the request;
 * - `forward-then-reset`: pass it to the server, wait for its answer, then close the client's connection instead of
 *   answering (the request took effect but the client cannot know);
 * - `{ cutAfterBytes }`: pass it on, but close the connection after that many bytes of the answer's body.
 */
export type FaultAction =
  | 'forward'
  | 'reset'
  | 'forward-then-reset'
  | { status: number; body?: string; headers?: Record<string, string> }
  | { cutAfterBytes: number };

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Every request, in arrival order. */
  readonly requests: ProxiedRequest[];
  /** Decides what happens to each request; forwards everything when unset. */
  rule: ((request: ProxiedRequest, index: number) => FaultAction | undefined) | undefined;
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a test server (`target`, e.g. MinIO), recording each request's method, URL
 * and headers and injecting faults per request. Headers (`Host` included) pass unchanged, so signed requests (S3
 * SigV4) still verify at the server.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const sockets = new Set<net.Socket>();
  const proxy: FaultProxy = {
    endpoint: '',
    requests: [],
    rule: undefined,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const seen: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers } };
    const index = proxy.requests.push(seen) - 1;
    const action = proxy.rule?.(seen, index) ?? 'forward';
    if (action === 'reset') {
      req.socket.destroy();
      return;
    }
    if (typeof action === 'object' && 'status' in action) {
      req.resume();
      req.on('end', () => {
        seen.status = action.status;
        res.writeHead(action.status, { 'content-type': 'application/xml', ...action.headers });
        res.end(action.body ?? '');
      });
      return;
    }
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        seen.status = answer.statusCode;
        if (action === 'forward-then-reset') {
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (typeof action === 'object') {
          let left = action.cutAfterBytes;
          answer.on('data', (chunk: Buffer) => {
            if (left <= 0) return;
            res.write(chunk.subarray(0, left));
            left -= chunk.length;
            if (left <= 0) {
              answer.destroy();
              // Let the bytes written so far leave before the connection drops.
              res.socket?.end(() => req.socket.destroy());
            }
          });
          answer.on('end', () => res.end());
          return;
        }
        answer.pipe(res);
      },
    );
    out.on('error', () => req.socket.destroy());
    req.pipe(out);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  (proxy as { endpoint: string }).endpoint = `http://127.0.0.1:${port}`;
  return proxy;
}

/** An S3 error document, for `{ status, body }` answers. */
export function s3ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}
