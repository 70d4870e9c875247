import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { routeForeignLogs } from '../../core/observability/foreign-logs.js';
import { createLogger } from '../../core/observability/logger.js';

const capture = (level: 'debug' | 'info' | 'warn' | 'error' = 'debug') => {
  const lines: string[] = [];
  return { lines, log: createLogger({ level, sink: { write: (line: string) => void lines.push(line) } }) };
};

describe('logs', () => {
  it('writes one JSON object per line with time, level and msg, at the configured level and above', () => {
    const { lines, log } = capture('info');
    log.debug('hidden');
    log.info('shown', { workspaceId: 'w1' });
    log.child({ op: 'backup' }).error('failed', { error: Object.assign(new Error('boom'), { code: 'DATA_LOSS' }) });
    assert.equal(lines.length, 2);
    for (const line of lines) assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line each');
    const [info, error] = lines.map((l) => JSON.parse(l));
    assert.equal(info.level, 'info');
    assert.equal(info.msg, 'shown');
    assert.equal(info.workspaceId, 'w1');
    assert.ok(!Number.isNaN(Date.parse(info.time)));
    assert.equal(error.op, 'backup');
    assert.deepEqual(error.error, { message: 'boom', name: 'Error', code: 'DATA_LOSS' });
  });

  it('redacts secrets in messages, fields at any depth and bound fields', () => {
    const { lines, log } = capture();
    log
      .child({ auth_password: 'bound-secret', remote: 'https://user:bound-token@example.test/r.git' })
      .info('cloning https://user:msg-token@example.test/r.git', { nested: { deeper: { token: 'field-secret' } }, list: ['https://a:list-secret@h/'] });
    const text = lines.join('');
    for (const secret of ['bound-secret', 'bound-token', 'msg-token', 'field-secret', 'list-secret']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.match(text, /\(redacted\)/);
  });

  it("routes grpc-js's logger and Node's warnings into the JSON log instead of free text on stderr", async () => {
    const { lines, log } = capture();
    routeForeignLogs(log);
    grpc.experimental.log(grpc.logVerbosity.ERROR, 'a grpc-js complaint');
    process.emitWarning('a node warning', { code: 'WSD_TEST' });
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    const parsed = lines.map((l) => JSON.parse(l));
    assert.ok(parsed.some((l) => l.component === 'grpc-js' && /a grpc-js complaint/.test(l.msg)), lines.join(''));
    assert.ok(parsed.some((l) => l.msg === 'node warning' && l.warning === 'a node warning' && l.code === 'WSD_TEST'), lines.join(''));
  });
});
