import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromProtoJson, jsonName, toProtoJson } from '../../core/api/proto-json.js';

const parse = (json: unknown) => fromProtoJson('contentservice.WorkspaceInitializer', json);

describe('proto JSON mapping of initializers', () => {
  it("uses protoc's JSON names, including the contract's odd spellings", () => {
    assert.equal(jsonName('upstream_Remote_uri'), 'upstreamRemoteUri');
    assert.equal(jsonName('clone_taget'), 'cloneTaget');
    assert.equal(jsonName('uncommited_files'), 'uncommitedFiles');
  });

  it('accepts JSON names and field names, enums by name or number', () => {
    const spec = parse({ git: { remoteUri: 'https://h/r.git', upstream_Remote_uri: 'https://h/u.git', targetMode: 2, cloneTaget: 'dev', config: { authentication: 'BASIC_AUTH', customConfig: { 'core.autocrlf': 'false' } } } });
    assert.deepEqual(spec, {
      spec: 'git',
      git: {
        remote_uri: 'https://h/r.git',
        upstream_Remote_uri: 'https://h/u.git',
        target_mode: 'REMOTE_BRANCH',
        clone_taget: 'dev',
        config: { authentication: 'BASIC_AUTH', custom_config: { 'core.autocrlf': 'false' } },
      },
    });
  });

  it('names the path of unknown fields, wrong types and conflicting oneof members', () => {
    assert.throws(() => parse({ git: { remote: 'x' } }), /git\.remote: unknown field of contentservice\.GitInitializer/);
    assert.throws(() => parse({ download: { files: [{ url: 1 }] } }), /download\.files\[0\]\.url: expected a string, got 1/);
    assert.throws(() => parse({ git: { fullClone: 'yes' } }), /git\.fullClone: expected true or false/);
    assert.throws(() => parse({ empty: {}, git: {} }), /only one of empty, git may be set/);
    assert.throws(() => parse([]), /expected an object/);
  });
});

describe('proto JSON mapping of responses (what --json prints)', () => {
  it('writes lowerCamel names, enums by name, 64-bit integers as strings, defaults, and leaves unset messages and optionals out', () => {
    const detail = toProtoJson('wsd.v1.WorkspaceDetail', {
      summary: { id: 'w', state: 'WORKSPACE_STATE_READY', owner: 'o', meta_id: 'm', created_at: 't', updated_at: 't' },
      folder: '/f',
      quota_limit_bytes: 1073741824,
      last_backup: null,
      last_error: '',
      snapshots: [{ name: 's', status: 'done', error: '', started_at: 't', size_bytes: 42 }],
      git_status: { branch: 'main', latest_commit: 'abc', uncommited_files: ['a'], untracked_files: [], unpushed_commits: [], total_uncommited_files: 1, total_untracked_files: 0, total_unpushed_commits: 0 },
      warnings: ['w1'],
    });
    assert.deepEqual(detail, {
      summary: { id: 'w', state: 'WORKSPACE_STATE_READY', owner: 'o', metaId: 'm', createdAt: 't', updatedAt: 't' },
      folder: '/f',
      quotaLimitBytes: '1073741824',
      lastError: '',
      snapshots: [{ name: 's', status: 'done', error: '', startedAt: 't', sizeBytes: '42' }],
      gitStatus: { branch: 'main', latestCommit: 'abc', uncommitedFiles: ['a'], untrackedFiles: [], unpushedCommits: [], totalUncommitedFiles: '1', totalUntrackedFiles: '0', totalUnpushedCommits: '0' },
      warnings: ['w1'],
    });
    // proto3 `optional`: present only when grpc-js says it was set (its synthetic oneof names the field).
    assert.deepEqual(toProtoJson('wsd.v1.WorkspaceDetail', { quota_used_bytes: 7, _quota_used_bytes: 'quota_used_bytes' }), { quotaUsedBytes: '7' });
    assert.deepEqual(toProtoJson('wsd.v1.WorkspaceDetail', { quota_used_bytes: 0 }), {});
    assert.deepEqual(toProtoJson('wsd.v1.StateCount', { state: 2, count: 3 }), { state: 'WORKSPACE_STATE_READY', count: '3' });
  });
});
