import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { tempDir } from '../../../test/kit/temp-dir.js';
import { LocalStorageBackend } from './local-storage-backend.js';

const moduleUrl = new URL('./local-storage-backend.js', import.meta.url).href;

/**
 * A second daemon on the same root, reduced to what matters: a process that, per line `{ key, ifMatch?, body }` on
 * stdin, makes that conditional put and answers `{ ok, etag?, code? }`. Puts start when the line arrives, so the
 * test releases all processes at once without sleeping.
 */
function writerProcess(root: string): { ask(request: object): Promise<{ ok: boolean; etag?: string; code?: string }>; child: ChildProcessWithoutNullStreams } {
  const code = `
    import { createInterface } from 'node:readline';
    const { LocalStorageBackend } = await import(${JSON.stringify(moduleUrl)});
    const storage = new LocalStorageBackend(${JSON.stringify(root)});
    for await (const line of createInterface({ input: process.stdin })) {
      const { key, ifMatch, body } = JSON.parse(line);
      const answer = await storage
        .put({ key, body: Buffer.from(body), ...(ifMatch ? { ifMatch } : { ifNoneMatch: true }) })
        .then(({ etag }) => ({ ok: true, etag }), (error) => ({ ok: false, code: error.code ?? String(error) }));
      process.stdout.write(JSON.stringify(answer) + '\\n');
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  const answers = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    async ask(request) {
      child.stdin.write(`${JSON.stringify(request)}\n`);
      const { value, done } = await answers.next();
      assert.ok(!done, 'the writer process answered');
      return JSON.parse(value as string);
    },
  };
}

describe('storage/local conditional puts', () => {
  const children: ChildProcessWithoutNullStreams[] = [];
  after(() => children.forEach((c) => c.kill()));

  it('gives every put a new etag, identical bytes included', async () => {
    const storage = new LocalStorageBackend(tempDir('wsd-local-etag-'));
    const etags = new Set<string>();
    for (let i = 0; i < 50; i++) etags.add((await storage.put({ key: 'a/same', body: Buffer.from('same bytes') })).etag);
    assert.equal(etags.size, 50);
    // A stale etag stays stale, however many puts of the same bytes came between.
    const first = [...etags][0]!;
    await assert.rejects(storage.put({ key: 'a/same', body: Buffer.from('same bytes'), ifMatch: first }), { code: 'FAILED_PRECONDITION' });
  });

  it('lets exactly one writer win across processes, round after round, for ifMatch and ifNoneMatch', async () => {
    const root = tempDir('wsd-local-race-');
    const storage = new LocalStorageBackend(root);
    const writers = Array.from({ length: 4 }, () => writerProcess(root));
    children.push(...writers.map((w) => w.child));
    for (let round = 0; round < 10; round++) {
      const base = await storage.put({ key: 'shared/latest.json', body: Buffer.from(`base ${round}`) });
      const replaced = await Promise.all(writers.map((w, i) => w.ask({ key: 'shared/latest.json', ifMatch: base.etag, body: `writer ${i} round ${round}` })));
      const winners = replaced.flatMap((a, i) => (a.ok ? [i] : []));
      assert.equal(winners.length, 1, `round ${round}: one ifMatch winner, got ${JSON.stringify(replaced)}`);
      assert.ok(replaced.every((a) => a.ok || a.code === 'FAILED_PRECONDITION'));
      const got = await storage.get({ key: 'shared/latest.json' });
      assert.equal(got.etag, replaced[winners[0]!]!.etag);
      let text = '';
      for await (const chunk of got.body) text += chunk;
      assert.equal(text, `writer ${winners[0]} round ${round}`);

      const created = await Promise.all(writers.map((w, i) => w.ask({ key: `shared/new-${round}`, body: `creator ${i}` })));
      assert.equal(created.filter((a) => a.ok).length, 1, `round ${round}: one ifNoneMatch winner`);
      assert.ok(created.every((a) => a.ok || a.code === 'ALREADY_EXISTS'));
    }
    const leftovers = readdirSync(path.join(root, 'shared~')).filter((n) => n.startsWith('.~'));
    assert.deepEqual(leftovers, [], 'no temp or lock file is left behind');
  });

  it('breaks a lock that a crashed writer left behind', async () => {
    const root = tempDir('wsd-local-lock-');
    const storage = new LocalStorageBackend(root);
    const { etag } = await storage.put({ key: 'w/latest.json', body: Buffer.from('v1') });
    const locks = () => readdirSync(path.join(root, 'w~')).filter((n) => n.startsWith('.~lock-'));
    assert.deepEqual(locks(), [], 'a put releases its lock');
    // The lock file a put of this key holds, as a writer that crashed in its commit step a minute ago leaves it.
    const held = path.join(root, 'w~', `.~lock-${createHash('sha256').update('latest.json').digest('hex').slice(0, 32)}`);
    writeFileSync(held, '{"crashed":true}\n');
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(held, minuteAgo, minuteAgo);
    await storage.put({ key: 'w/latest.json', body: Buffer.from('v2'), ifMatch: etag });
    assert.deepEqual(locks(), []);
  });
});

