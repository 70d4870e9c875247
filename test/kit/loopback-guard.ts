import net from 'node:net';

const loopbackHosts = new Set(['127.0.0.1', '::1', 'localhost']);

export interface LoopbackGuard {
  /** `host:port` of every connection attempted elsewhere (each one was refused). */
  readonly violations: string[];
  restore(): void;
}

/**
 * Refuses, and records, every TCP connection this process attempts to a host other than 127.0.0.1 / ::1 /
 * localhost (an SDK's metadata-server probe, a token endpoint, a real cloud): a test never reaches beyond this host,
 * and this proves it for the tests that install it. Unix sockets pass.
 */
export function guardLoopback(): LoopbackGuard {
  const original = net.Socket.prototype.connect;
  const violations: string[] = [];
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    // http's agent passes Node's normalized [options, callback]; other callers options, or port and host.
    const first = args[0];
    const options = (Array.isArray(first) ? first[0] : typeof first === 'object' && first !== null ? first : { port: first, host: args[1] }) as { host?: unknown; port?: unknown; path?: unknown };
    // A host means TCP (http's agents also pass the request's URL path as `path`); no host and a path is a Unix socket.
    const host = typeof options.host === 'string' ? options.host : options.path === undefined ? 'localhost' : undefined;
    if (host !== undefined && !loopbackHosts.has(host)) {
      violations.push(`${host}:${String(options.port)}`);
      process.nextTick(() => this.destroy(Object.assign(new Error(`connection to ${host} refused by the test's loopback guard`), { code: 'ECONNREFUSED' })));
      return this;
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
  return {
    violations,
    restore() {
      net.Socket.prototype.connect = original;
    },
  };
}
