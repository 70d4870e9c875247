import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the proxy saw it (the body read whole). */
export interface ProxiedRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** 0 for the first request the proxy received. */
  index: number;
  /** Status of the answer: the proxy's own, or the target's (also for `drop-answer`); unset while pending. */
  status?: number;
}

/**
 * What the proxy does with a request:
 * - `forward`: pass it to the target and its answer back;
 * - `{ status, body?, headers? }`: answer itself, never reaching the target (a 503 from a load balancer, a 403);
 * - `drop-answer`: pass it to the target, then cut the connection instead of answering (the request took effect,
 *   the client cannot know);
 * - `{ cutAnswerAfter: n }`: pass it on and cut the connection after `n` bytes of the answer's body;
 * - `reset`: cut the connection without passing the request on.
 */
export type ProxyDecision =
  | 'forward'
  | 'drop-answer'
  | 'reset'
  | { status: number; body?: string; headers?: Record<string, string> }
  | { cutAnswerAfter: number };

export type ProxyRule = (request: ProxiedRequest) => ProxyDecision | Promise<ProxyDecision>;

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Every request received, in order. */
  readonly requests: ProxiedRequest[];
  /** Replaces the rule (the default forwards everything). */
  setRule(rule: ProxyRule): void;
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a test server, to make faults a real server does not make on its own:
 * transient 5xx, refused credentials, lost answers, broken transfers. It keeps the client's Host header, so a server
 * that builds URLs from it (fake-gcs-server's upload session URIs) points back at the proxy.
 */
export async function startFaultProxy(target: string, rule: ProxyRule = () => 'forward'): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  const requests: ProxiedRequest[] = [];
  let current = rule;
  const server = http.createServer(async (req, res) => {
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const request: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(parts), index: requests.length };
    requests.push(request);
    let decision: ProxyDecision;
    try {
      decision = await current(request);
    } catch (error) {
      decision = { status: 500, body: `proxy rule failed: ${(error as Error).message}` };
    }
    if (decision === 'reset') {
      req.socket.destroy();
      return;
    }
    if (typeof decision === 'object' && 'status' in decision) {
      request.status = decision.status;
      res.writeHead(decision.status, { 'content-type': 'application/json', ...decision.headers });
      res.end(decision.body ?? '');
      return;
    }
    const headers = { ...req.headers };
    delete headers['content-length'];
    const upstream = http.request(
      { host: targetUrl.hostname, port: targetUrl.port, method: request.method, path: request.url, headers: { ...headers, 'content-length': String(request.body.length) } },
      (answer) => {
        request.status = answer.statusCode;
        if (decision === 'drop-answer') {
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (typeof decision === 'object' && 'cutAnswerAfter' in decision) {
          let sent = 0;
          const limit = decision.cutAnswerAfter;
          answer.on('data', (chunk: Buffer) => {
            if (sent >= limit) return;
            const part = chunk.subarray(0, limit - sent);
            sent += part.length;
            res.write(part);
            if (sent >= limit) {
              answer.destroy();
              // Flush what was written, then cut: the client sees a transfer that breaks midway.
              setImmediate(() => req.socket.destroy());
            }
          });
          answer.on('end', () => res.end());
          return;
        }
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(`proxy: ${error.message}`);
    });
    upstream.end(request.body);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    setRule(rule) {
      current = rule;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
