import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromProtoJson, jsonName } from '../../core/api/proto-json.js';

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
