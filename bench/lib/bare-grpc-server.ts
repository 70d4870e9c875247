// The baseline of the API figures: a bare grpc-js server on wsd's own protos, answering IsWorkspaceExists the way
// the daemon answers an unknown id, plus a plain HTTP server (the daemon serves probes and metrics beside gRPC).
// Started like the daemon (it ignores `run --config …`) and prints the same `ready` line. Never part of wsd.
import http from 'node:http';
import { once } from 'node:events';
import { Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { serviceConstructor } from '../../core/api/proto.js';

const server = new Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
const content = serviceConstructor('wsdaemon.WorkspaceContentService');
const unimplemented = (_call: unknown, callback: sendUnaryData<unknown>) => callback({ code: status.UNIMPLEMENTED, details: 'bare server' });
server.addService(content.service, {
  ...Object.fromEntries(Object.keys(content.service).map((name) => [name, unimplemented])),
  IsWorkspaceExists: (call: ServerUnaryCall<{ id: string }, unknown>, callback: sendUnaryData<{ exists: boolean }>) => {
    if (!call.request.id) return callback({ code: status.INVALID_ARGUMENT, details: 'id is required' });
    callback(null, { exists: false });
  },
});
const grpcPort = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
);
const web = http.createServer((_request, response) => response.end('ok\n'));
web.listen(0, '127.0.0.1');
await once(web, 'listening');
const httpPort = (web.address() as { port: number }).port;
console.log(JSON.stringify({ msg: 'ready', grpc: `127.0.0.1:${grpcPort}`, http: `127.0.0.1:${httpPort}` }));
process.once('SIGTERM', () => {
  web.close();
  server.forceShutdown();
  process.exit(0);
});
