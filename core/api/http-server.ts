import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { HealthReport } from '../health/health-monitor.js';
import type { StatusReport } from '../observability/status-report.js';
import { refreshSeconds, renderStatusPage, statusPageHeaders } from './status-page.js';

export interface ProbeSources {
  metrics: Registry;
  /** Whether the daemon has started and is not shutting down. */
  running(): boolean;
  health(): Promise<HealthReport>;
  /** The operators' status page (`/`) and its JSON (`/status.json`); without it both are 404. */
  status?: () => Promise<StatusReport>;
}

/**
 * `/healthz` (liveness: the process answers), `/readyz` (readiness: started, not stopping, all critical health
 * checks ok; the report as JSON either way), `/metrics` (Prometheus text format), and the read-only status page
 * for operators: `/` (HTML, `?refresh=N` seconds) and `/status.json`.
 */
export class ProbeServer {
  readonly #server: Server;
  readonly #sources: ProbeSources;

  constructor(sources: ProbeSources) {
    this.#sources = sources;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`internal error: ${(error as Error)?.message ?? String(error)}\n`);
      });
    });
  }

  /** Listens on `host:port` (port 0 picks one) and returns the bound `host:port`. */
  async listen(address: string): Promise<string> {
    const split = address.lastIndexOf(':');
    const host = address.slice(0, split).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(split + 1));
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const bound = this.#server.address() as AddressInfo;
    return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const running = this.#sources.running();
        const report = running ? await this.#sources.health() : { ready: false, checks: [] };
        const body = { ready: running && report.ready, ...(running ? {} : { reason: 'not running' }), checks: report.checks };
        res.writeHead(body.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
        return;
      }
      case '/metrics': {
        const text = await this.#sources.metrics.metrics();
        res.writeHead(200, { 'content-type': this.#sources.metrics.contentType }).end(text);
        return;
      }
      case '/':
      case '/status.json': {
        if (!this.#sources.status) break;
        const report = await this.#sources.status();
        if (url.pathname === '/status.json') {
          res.writeHead(200, { ...statusPageHeaders, 'content-type': 'application/json' }).end(`${JSON.stringify(report)}\n`);
        } else {
          const page = renderStatusPage(report, { refreshSeconds: refreshSeconds(url.searchParams) });
          res.writeHead(200, { ...statusPageHeaders, 'content-type': 'text/html; charset=utf-8' }).end(page);
        }
        return;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
}
