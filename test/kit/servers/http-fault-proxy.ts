import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the proxy saw it; `index` counts from 0 over the proxy's life. */
export interface ProxiedRequest {
  index: number;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * What the proxy does with one request:
 * - `undefined`: forward it and pass the answer back;
 * - `{ answer }`: answer with this status (and an Azure/S3-style error body) without forwarding;
 * - `{ forwardThen }`: forward it, let the server finish it, run `before` (e.g. another writer's change), then
 *   instead of the server's answer send `forwardThen` (a status) or cut the connection (`'drop'`): a lost answer;
 * - `{ cutAfter }`: forward it, pass the answer's head and its first `cutAfter` body bytes, then cut the connection
 *   (`before` runs just before the cut);
 * - `{ stall: true }`: read the request and never answer.
 */
export type FaultDecision =
  | undefined
  | { answer: number; code?: string }
  | { forwardThen: number | 'drop'; before?: () => Promise<void> }
  | { cutAfter: number; before?: () => Promise<void> }
  | { stall: true };

export interface HttpFaultProxy {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Every request seen, in order, with what was done to it. */
  requests: (ProxiedRequest & { fault: string })[];
  close(): Promise<void>;
}

/**
 * A tiny HTTP proxy on 127.0.0.1 in front of a real test server that injects faults by rule: transient answers
 * (503), permanent ones (403), answers lost after the server acted. The client talks to the proxy as to the server
 * (same paths; the target's own port in `Host` is not needed by Azurite, MinIO or fake-gcs-server).
 */
export async function startHttpFaultProxy(target: string, decide: (request: ProxiedRequest) => FaultDecision): Promise<HttpFaultProxy> {
  const to = new URL(target);
  const requests: HttpFaultProxy['requests'] = [];
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((request, response) => {
    const seen: ProxiedRequest = { index: requests.length, method: request.method ?? 'GET', url: request.url ?? '/', headers: request.headers };
    const decision = decide(seen);
    const record = { ...seen, fault: describe(decision) };
    requests.push(record);
    if (decision && 'stall' in decision) {
      request.resume();
      return;
    }
    if (decision && 'answer' in decision) {
      request.resume();
      request.once('end', () => {
        const code = decision.code ?? (decision.answer === 503 ? 'ServerBusy' : decision.answer === 403 ? 'AuthorizationFailure' : 'InternalError');
        const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`;
        response.writeHead(decision.answer, { 'content-type': 'application/xml', 'x-ms-error-code': code, 'content-length': Buffer.byteLength(body) });
        response.end(body);
      });
      return;
    }
    const upstream = http.request(
      { host: to.hostname, port: to.port, method: request.method, path: request.url, headers: request.headers, agent },
      (answer) => {
        if (!decision) {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
          return;
        }
        if ('cutAfter' in decision) {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          let passed = 0;
          let cut = false;
          answer.on('data', (chunk: Buffer) => {
            if (cut) return;
            const room = decision.cutAfter - passed;
            if (chunk.length < room) {
              passed += chunk.length;
              response.write(chunk);
              return;
            }
            cut = true;
            answer.pause();
            response.write(chunk.subarray(0, room), () => {
              void (decision.before ?? (async () => {}))().then(() => {
                request.socket.destroy();
                answer.destroy();
              });
            });
          });
          return;
        }
        if (!('forwardThen' in decision)) return;
        answer.resume();
        answer.once('end', async () => {
          await decision.before?.();
          if (decision.forwardThen === 'drop') {
            request.socket.destroy();
            return;
          }
          const body = '<?xml version="1.0" encoding="utf-8"?><Error><Code>InternalError</Code><Message>answer replaced by the test proxy</Message></Error>';
          response.writeHead(decision.forwardThen, { 'content-type': 'application/xml', 'x-ms-error-code': 'InternalError', 'content-length': Buffer.byteLength(body) });
          response.end(body);
        });
      },
    );
    upstream.on('error', () => request.socket.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function describe(decision: FaultDecision): string {
  if (decision === undefined) return 'forwarded';
  if ('answer' in decision) return `answered ${decision.answer}`;
  if ('stall' in decision) return 'stalled';
  if ('cutAfter' in decision) return `cut after ${decision.cutAfter} bytes`;
  return `forwarded, then ${decision.forwardThen}`;
}
