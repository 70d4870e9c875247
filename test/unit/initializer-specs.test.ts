import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toInitializerRef } from '../../core/api/initializer-specs.js';
import { isWsdError } from '../../core/errors.js';

describe('wire → domain initializer specs', () => {
  it('maps each kind field by field: no oneof key, no loader defaults, enums as names, composites as refs', () => {
    // What @grpc/proto-loader delivers with defaults: empty strings, false, null messages, the virtual `spec`.
    const wire = {
      spec: 'composite',
      composite: {
        initializer: [
          { spec: 'empty', empty: {} },
          {
            spec: 'git',
            git: { remote_uri: 'https://h/r.git', upstream_Remote_uri: '', target_mode: 'REMOTE_BRANCH', clone_taget: 'dev', checkout_location: 'src', config: { custom_config: {}, authentication: 'BASIC_AUTH', auth_user: 'u', auth_password: 'p', auth_ots: '' }, full_clone: false },
          },
          { spec: 'download', download: { files: [{ url: 'https://h/f', file_path: 'f', digest: 'sha256:00' }], target_location: '' } },
          { spec: 'prebuild', prebuild: { prebuild: { snapshot: 'o/workspaces/m/snapshots/x.tar.zst', from_volume_snapshot: false }, git: [] } },
        ],
      },
    };
    assert.deepEqual(toInitializerRef(wire), {
      kind: 'composite',
      spec: {
        initializer: [
          { kind: 'empty', spec: {} },
          { kind: 'git', spec: { remote_uri: 'https://h/r.git', target_mode: 'REMOTE_BRANCH', clone_taget: 'dev', checkout_location: 'src', config: { authentication: 'BASIC_AUTH', auth_user: 'u', auth_password: 'p' } } },
          { kind: 'download', spec: { files: [{ url: 'https://h/f', file_path: 'f', digest: 'sha256:00' }] } },
          { kind: 'prebuild', spec: { prebuild: { snapshot: 'o/workspaces/m/snapshots/x.tar.zst' } } },
        ],
      },
    });
  });

  it('takes enums by number too, and refuses wrong types naming the field', () => {
    assert.deepEqual(toInitializerRef({ spec: 'git', git: { remote_uri: 'x', target_mode: 1 } }).spec, { remote_uri: 'x', target_mode: 'REMOTE_COMMIT' });
    for (const [wire, field] of [
      [{}, 'initializer'],
      [{ spec: 'svn', svn: {} }, 'initializer'],
      [{ spec: 'git', git: { remote_uri: 7 } }, 'initializer.git.remote_uri'],
      [{ spec: 'git', git: { target_mode: 'SIDEWAYS' } }, 'initializer.git.target_mode'],
      [{ spec: 'composite', composite: { initializer: [{ spec: 'download', download: { files: 'x' } }] } }, 'initializer.composite.initializer[0].download.files'],
    ] as const) {
      assert.throws(() => toInitializerRef(wire), (error: unknown) => isWsdError(error, 'INVALID_ARGUMENT') && error.field === field, JSON.stringify(wire));
    }
  });

  it('bounds what a request may hold: nesting depth, initializers overall, string length', () => {
    let deep: unknown = { spec: 'empty', empty: {} };
    for (let i = 0; i < 20; i++) deep = { spec: 'composite', composite: { initializer: [deep] } };
    assert.throws(() => toInitializerRef(deep), (e: unknown) => isWsdError(e, 'INVALID_ARGUMENT') && /nest at most/.test((e as Error).message));
    const wide = { spec: 'composite', composite: { initializer: Array.from({ length: 50 }, () => ({ spec: 'composite', composite: { initializer: Array.from({ length: 50 }, () => ({ spec: 'empty', empty: {} })) } })) } };
    assert.throws(() => toInitializerRef(wide), (e: unknown) => isWsdError(e, 'INVALID_ARGUMENT') && /at most 100 initializers/.test((e as Error).message));
    assert.throws(() => toInitializerRef({ spec: 'git', git: { remote_uri: `https://h/${'a'.repeat(10_000)}` } }), (e: unknown) => isWsdError(e, 'INVALID_ARGUMENT') && (e as { field?: string }).field === 'initializer.git.remote_uri');
    const fine = { spec: 'composite', composite: { initializer: Array.from({ length: 10 }, () => ({ spec: 'empty', empty: {} })) } };
    assert.equal((toInitializerRef(fine).spec as { initializer: unknown[] }).initializer.length, 10);
  });
});
