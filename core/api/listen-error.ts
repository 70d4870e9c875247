import { WsdError } from '../errors.js';

/**
 * A bind failure of the gRPC or HTTP endpoint as a sentence naming the setting and what to do. grpc-js wraps the
 * system error ("No address added out of total 1 resolved errors: [listen EADDRINUSE: …]"), Node's http server
 * gives it as it is: both carry the system code in their text.
 */
export function listenFailure(error: unknown, setting: string, address: string): WsdError {
  const text = `${(error as { code?: string })?.code ?? ''} ${(error as Error)?.message ?? String(error)}`;
  const at = `${setting} ${address}`;
  if (/EADDRINUSE/.test(text)) return new WsdError('FAILED_PRECONDITION', `${at}: the address is in use (another wsd or another program listens there); pick another port or stop that program`, { field: setting, cause: error });
  if (/EACCES/.test(text)) return new WsdError('PERMISSION_DENIED', `${at}: not allowed to listen there (ports below 1024 need root or CAP_NET_BIND_SERVICE)`, { field: setting, cause: error });
  if (/EADDRNOTAVAIL/.test(text)) return new WsdError('FAILED_PRECONDITION', `${at}: this host has no such address`, { field: setting, cause: error });
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return new WsdError('FAILED_PRECONDITION', `${at}: the host name does not resolve`, { field: setting, cause: error });
  return new WsdError('UNAVAILABLE', `${at}: cannot listen: ${(error as Error)?.message ?? String(error)}`, { field: setting, cause: error });
}
