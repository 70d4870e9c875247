import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { isWsdError, type WsdErrorCode } from '../../core/errors.js';
import { quotaHandleVersion, type QuotaHandle, type QuotaStrategy } from '../../core/quota/quota-strategy.js';
import { runWithNodeTest, type ConformanceCase, type ConformanceSuite } from './suite.js';

export interface QuotaConformanceOptions {
  /** Builds the strategy under test. Called once per case, and once more where a case simulates a restart. */
  create(): QuotaStrategy | Promise<QuotaStrategy>;
  /**
   * A fresh, empty folder on the file system the strategy works on (the XFS file system with project quotas, the
   * folder loop images are mounted under, ...). Called once per case; workspace folders are made inside it.
   */
  workspaceRoot(): string | Promise<string>;
  /** Limit given to provision in the cases that write (default 16 MiB); volume strategies may need more. */
  limitBytes?: number;
  /** Runs after the suite (stop a server, detach loop devices the strategy left). */
  teardown?(): Promise<void> | void;
}

const MiB = 1024 * 1024;

/**
 * The contract of {@link QuotaStrategy} (v1, ADR 0004), as tests. Every quota plugin — built-in or third-party — runs
 * it on the file system it is meant for (real loop devices, a real XFS with project quotas, a real volume group):
 *
 * ```ts
 * describeQuotaStrategyConformance('none', { create: () => new NoneQuotaStrategy(), workspaceRoot: () => tempDir() });
 * ```
 *
 * Cases for capabilities a strategy does not declare are skipped with the reason (and check that the strategy
 * refuses what it does not declare, where the contract says so).
 */
export function quotaStrategyConformance(name: string, options: QuotaConformanceOptions): ConformanceSuite {
  const limit = options.limitBytes ?? 16 * MiB;
  const cases: ConformanceCase[] = [];
  const it = (caseName: string, run: ConformanceCase['run'], timeoutMs?: number) =>
    void cases.push({ name: caseName, run, ...(timeoutMs ? { timeoutMs } : {}) });

  /** One case's world: a strategy, its root, and every handle it provisions, released at the end whatever happens. */
  const scenario = async (run: (s: Scenario) => Promise<void>) => {
    const strategy = await options.create();
    const root = await options.workspaceRoot();
    const handles: QuotaHandle[] = [];
    const s: Scenario = {
      strategy,
      root,
      dir: (id) => path.join(root, id),
      id: () => `cf-${randomBytes(4).toString('hex')}`,
      async provision(id, limitBytes = limit) {
        const handle = await strategy.provision({ workspaceId: id, dir: path.join(root, id), limitBytes });
        handles.push(handle);
        return handle;
      },
    };
    try {
      await run(s);
    } finally {
      for (const handle of handles) await strategy.release({ handle }).catch(() => {});
    }
  };

  it('declares its id and all four capabilities', async () => {
    const strategy = await options.create();
    assert.match(strategy.id, /^[a-z][a-z0-9-]*$/, 'a short kebab-case id (its plugin id)');
    for (const key of ['enforces', 'reportsUsage', 'resizable', 'softLimits'] as const) {
      assert.equal(typeof strategy.capabilities[key], 'boolean', `capabilities.${key}`);
    }
  });

  it('provision creates the folder and returns a version-1 JSON handle of its strategy', () =>
    scenario(async (s) => {
      const id = s.id();
      const handle = await s.provision(id);
      assert.ok(statSync(s.dir(id)).isDirectory(), 'the folder exists');
      assert.deepEqual(readdirSync(s.dir(id)).filter((f) => f !== 'lost+found'), [], 'the folder starts empty (a fresh file system may hold lost+found)');
      writeFileSync(path.join(s.dir(id), 'hello.txt'), 'hello');
      assert.equal(handle.version, quotaHandleVersion);
      assert.equal(handle.strategy, s.strategy.id);
      assert.equal(handle.workspaceId, id);
      assert.equal(handle.dir, s.dir(id));
      assert.ok(handle.limitBytes >= limit, `limitBytes ${handle.limitBytes} is at least the ${limit} asked for`);
      assert.deepEqual(JSON.parse(JSON.stringify(handle)), handle, 'the handle survives being persisted as JSON');
    }));

  it('provision refuses an existing folder, file or symlink with ALREADY_EXISTS and touches nothing', () =>
    scenario(async (s) => {
      const folder = s.id();
      mkdirSync(s.dir(folder));
      writeFileSync(path.join(s.dir(folder), 'keep.txt'), 'not the strategy\'s');
      const before = statSync(s.dir(folder));
      await assertCode(s.provision(folder), 'ALREADY_EXISTS', 'existing folder');
      assert.equal(readFileSync(path.join(s.dir(folder), 'keep.txt'), 'utf8'), 'not the strategy\'s');
      assert.deepEqual(readdirSync(s.dir(folder)), ['keep.txt']);
      const after = statSync(s.dir(folder));
      assert.equal(after.dev, before.dev, 'nothing was mounted over it');
      assert.equal(after.mode, before.mode, 'its mode is unchanged');

      const file = s.id();
      writeFileSync(s.dir(file), 'a file');
      await assertCode(s.provision(file), 'ALREADY_EXISTS', 'existing file');
      assert.equal(readFileSync(s.dir(file), 'utf8'), 'a file');

      const link = s.id();
      symlinkSync(path.join(s.root, 'nowhere'), s.dir(link));
      await assertCode(s.provision(link), 'ALREADY_EXISTS', 'dangling symlink');
      assert.ok(lstatSync(s.dir(link)).isSymbolicLink(), 'the symlink is left as it is');
      assert.equal(existsSync(path.join(s.root, 'nowhere')), false, 'nothing was created through the symlink');
    }));

  it('provision refuses a bad limit with INVALID_ARGUMENT and leaves no folder', () =>
    scenario(async (s) => {
      for (const bad of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2]) {
        const id = s.id();
        await assertCode(s.provision(id, bad), 'INVALID_ARGUMENT', `limit ${bad}`);
        assert.equal(existsSync(s.dir(id)), false, `no folder for limit ${bad}`);
      }
    }));

  it('usage reports the bytes written (when it declares reportsUsage)', (t) =>
    scenario(async (s) => {
      const handle = await s.provision(s.id());
      if (!s.strategy.capabilities.reportsUsage) {
        assert.equal((await s.strategy.usage({ handle })).usedBytes, undefined, 'without reportsUsage, usedBytes is left out');
        t.skip(`${name} does not declare reportsUsage`);
      }
      const empty = (await s.strategy.usage({ handle })).usedBytes;
      assert.equal(typeof empty, 'number');
      await writeBytes(path.join(handle.dir, 'one-mib.bin'), MiB);
      const used = (await s.strategy.usage({ handle })).usedBytes!;
      assert.ok(used >= empty! + MiB - 64 * 1024, `usedBytes grew by about 1 MiB (${empty} → ${used})`);
    }));

  it('setLimit soft lets a restore exceed the limit, then hard sets it (when it declares softLimits)', (t) =>
    scenario(async (s) => {
      const handle = await s.provision(s.id());
      if (!s.strategy.capabilities.softLimits) {
        await assertCode(s.strategy.setLimit({ handle, limitBytes: limit, mode: 'soft' }), 'FAILED_PRECONDITION', 'soft without softLimits');
        t.skip(`${name} does not declare softLimits: core skips the soft phase`);
      }
      const soft = await s.strategy.setLimit({ handle, limitBytes: limit, mode: 'soft' });
      assert.equal(soft.strategy, s.strategy.id);
      assert.equal(soft.version, quotaHandleVersion);
      assert.equal(soft.limitBytes, limit);
      if (s.strategy.capabilities.enforces) {
        const error = await writeBytes(path.join(handle.dir, 'restore.bin'), limit + 2 * MiB).then(() => undefined, (e: unknown) => e);
        assert.equal(error, undefined, `a soft limit may be exceeded for a while: ${String(error)}`);
        await rm(path.join(handle.dir, 'restore.bin'));
      }
      const hard = await s.strategy.setLimit({ handle: soft, limitBytes: limit, mode: 'hard' });
      assert.equal(hard.limitBytes, limit);
      if (s.strategy.capabilities.reportsUsage) assert.equal((await s.strategy.usage({ handle: hard })).limitBytes, limit);
    }), 120_000);

  it('setLimit grows a hard limit (when it declares resizable)', (t) =>
    scenario(async (s) => {
      const handle = await s.provision(s.id());
      if (!s.strategy.capabilities.resizable) t.skip(`${name} does not declare resizable`);
      const same = await s.strategy.setLimit({ handle, limitBytes: handle.limitBytes, mode: 'hard' });
      assert.equal(same.limitBytes, handle.limitBytes, 'setting the limit a handle has succeeds');
      const grown = await s.strategy.setLimit({ handle: same, limitBytes: 2 * limit, mode: 'hard' });
      assert.ok(grown.limitBytes >= 2 * limit, `grown to ${grown.limitBytes}`);
      if (s.strategy.capabilities.reportsUsage) assert.ok((await s.strategy.usage({ handle: grown })).limitBytes! >= 2 * limit);
      await assertCode(s.strategy.setLimit({ handle: grown, limitBytes: -5, mode: 'hard' }), 'INVALID_ARGUMENT', 'negative limit');
    }), 120_000);

  it('writing past the hard limit fails with ENOSPC or EDQUOT (when it declares enforces)', (t) =>
    scenario(async (s) => {
      if (!s.strategy.capabilities.enforces) t.skip(`${name} does not declare enforces`);
      let handle = await s.provision(s.id());
      if (s.strategy.capabilities.softLimits) handle = await s.strategy.setLimit({ handle, limitBytes: limit, mode: 'hard' });
      const error = await writeBytes(path.join(handle.dir, 'too-big.bin'), 2 * limit + 4 * MiB).then(() => undefined, (e: unknown) => e);
      assert.ok(error, `writing ${2 * limit + 4 * MiB} bytes into a folder limited to ${limit} succeeded`);
      assert.ok(isOutOfSpace(error), `expected ENOSPC or EDQUOT, got ${String(error)} (${JSON.stringify(error)})`);
    }), 300_000);

  it('release removes the folder and its content, and is idempotent', () =>
    scenario(async (s) => {
      const handle = await s.provision(s.id());
      mkdirSync(path.join(handle.dir, 'a', 'b'), { recursive: true });
      writeFileSync(path.join(handle.dir, 'a', 'b', 'file.txt'), 'content');
      writeFileSync(path.join(handle.dir, 'read-only.txt'), 'x', { mode: 0o400 });
      symlinkSync(s.root, path.join(handle.dir, 'link-out')); // a link out of the folder: removed, never followed
      await s.strategy.release({ handle });
      assert.equal(existsSync(handle.dir), false, 'the folder is gone');
      assert.ok(statSync(s.root).isDirectory(), 'the link target is still there');
      await s.strategy.release({ handle });

      // A handle whose folder someone already removed is released too (an interrupted release, a manual cleanup).
      const other = await s.provision(s.id());
      await s.strategy.release({ handle: other });
      await s.strategy.release({ handle: JSON.parse(JSON.stringify(other)) as QuotaHandle });
      assert.equal(existsSync(other.dir), false);
    }));

  it('ten concurrent provisions give ten distinct handles and folders, released concurrently', () =>
    scenario(async (s) => {
      const ids = Array.from({ length: 10 }, () => s.id());
      const handles = await Promise.all(ids.map((id) => s.provision(id)));
      assert.equal(new Set(handles.map((h) => h.dir)).size, 10);
      for (const [i, handle] of handles.entries()) writeFileSync(path.join(handle.dir, `mine-${i}.txt`), String(i));
      for (const [i, handle] of handles.entries()) {
        assert.deepEqual(readdirSync(handle.dir).filter((f) => f !== 'lost+found'), [`mine-${i}.txt`], `folder ${i} holds only its own file`);
      }
      await Promise.all(handles.map((handle) => s.strategy.release({ handle })));
      for (const handle of handles) assert.equal(existsSync(handle.dir), false);
    }), 300_000);

  it('recover re-attaches persisted handles in a new instance, and the handles still work', () =>
    scenario(async (s) => {
      const handles = [await s.provision(s.id()), await s.provision(s.id())];
      writeFileSync(path.join(handles[0]!.dir, 'before-restart.txt'), 'kept');
      const persisted = JSON.parse(JSON.stringify(handles)) as QuotaHandle[];

      const restarted = await options.create();
      const { failed } = await restarted.recover({ handles: persisted });
      assert.deepEqual(failed, []);
      assert.equal(readFileSync(path.join(persisted[0]!.dir, 'before-restart.txt'), 'utf8'), 'kept');
      writeFileSync(path.join(persisted[1]!.dir, 'after-restart.txt'), 'new');
      if (restarted.capabilities.reportsUsage) assert.equal(typeof (await restarted.usage({ handle: persisted[0]! })).usedBytes, 'number');
      if (restarted.capabilities.softLimits || restarted.capabilities.resizable) {
        await restarted.setLimit({ handle: persisted[0]!, limitBytes: persisted[0]!.limitBytes, mode: 'hard' });
      }
      for (const handle of persisted) await restarted.release({ handle });
      for (const handle of persisted) assert.equal(existsSync(handle.dir), false);
      await restarted.recover({ handles: [] });
    }), 120_000);

  it('recover reports a handle of an unknown version as failed and re-attaches the others', () =>
    scenario(async (s) => {
      const good = await s.provision(s.id());
      const newer = await s.provision(s.id());
      writeFileSync(path.join(newer.dir, 'keep.txt'), 'x');
      const future = { ...newer, version: 99 } as unknown as QuotaHandle;
      const restarted = await options.create();
      const { failed } = await restarted.recover({ handles: [good, future] });
      assert.deepEqual(failed.map((f) => f.workspaceId), [newer.workspaceId]);
      assert.ok(isWsdError(failed[0]!.error, 'FAILED_PRECONDITION'), `FAILED_PRECONDITION, got ${String(failed[0]!.error)}`);
      assert.match(failed[0]!.error.message, /version/);
      await assertCode(restarted.release({ handle: future }), 'FAILED_PRECONDITION', 'release of an unknown version');
      assert.equal(readFileSync(path.join(newer.dir, 'keep.txt'), 'utf8'), 'x', 'a handle it does not understand is never acted on');
      await restarted.release({ handle: good });
      assert.equal(existsSync(good.dir), false);
    }));

  it('refuses a handle of another strategy with INVALID_ARGUMENT and touches nothing', () =>
    scenario(async (s) => {
      const handle = await s.provision(s.id());
      writeFileSync(path.join(handle.dir, 'keep.txt'), 'x');
      const foreign: QuotaHandle = { ...handle, strategy: `${s.strategy.id}-other` };
      await assertCode(s.strategy.release({ handle: foreign }), 'INVALID_ARGUMENT', 'release');
      await assertCode(s.strategy.setLimit({ handle: foreign, limitBytes: limit, mode: 'hard' }), 'INVALID_ARGUMENT', 'setLimit');
      await assertCode(s.strategy.usage({ handle: foreign }), 'INVALID_ARGUMENT', 'usage');
      await assertCode((await options.create()).recover({ handles: [foreign] }), 'INVALID_ARGUMENT', 'recover');
      assert.equal(readFileSync(path.join(handle.dir, 'keep.txt'), 'utf8'), 'x');
    }));

  it('a cancelled provision leaves no folder behind', () =>
    scenario(async (s) => {
      const aborted = new AbortController();
      aborted.abort();
      const id = s.id();
      await s.strategy.provision({ workspaceId: id, dir: s.dir(id), limitBytes: limit, signal: aborted.signal }).then(
        async (handle) => {
          await s.strategy.release({ handle }); // fast strategies may finish before looking at the signal
        },
        (error: unknown) => {
          assert.ok(isWsdError(error, 'CANCELLED'), `an aborted provision fails as CANCELLED, not with ${String(error)}`);
        },
      );
      assert.equal(existsSync(s.dir(id)), false);
    }));

  return { name: `QuotaStrategy conformance: ${name}`, cases, ...(options.teardown ? { teardown: options.teardown } : {}) };
}

/** The quota suite under node:test (see {@link quotaStrategyConformance} for other runners). */
export function describeQuotaStrategyConformance(...args: Parameters<typeof quotaStrategyConformance>): void {
  runWithNodeTest(quotaStrategyConformance(...args));
}

interface Scenario {
  strategy: QuotaStrategy;
  root: string;
  dir(id: string): string;
  id(): string;
  provision(id: string, limitBytes?: number): Promise<QuotaHandle>;
}

async function assertCode(promise: Promise<unknown>, code: WsdErrorCode, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isWsdError(error), `${what}: expected a WsdError, got ${String(error)}`);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    return true;
  });
}

/** Writes `bytes` in 1 MiB chunks and fsyncs: out-of-space may surface on write, on fsync or on close. */
async function writeBytes(file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(MiB, 0xa5);
    for (let written = 0; written < bytes; written += chunk.length) {
      await handle.write(chunk, 0, Math.min(chunk.length, bytes - written));
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** ENOSPC, or EDQUOT — which Node 20 reports as `code: 'UNKNOWN', errno: -122`. */
function isOutOfSpace(error: unknown): boolean {
  const { code, errno } = (error ?? {}) as { code?: unknown; errno?: unknown };
  return code === 'ENOSPC' || code === 'EDQUOT' || errno === -28 || errno === -122;
}
