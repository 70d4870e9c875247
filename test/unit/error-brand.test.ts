import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { describe, it } from 'node:test';
import { toServiceError } from '../../core/api/grpc-status.js';
import { WsdError, isWsdError, toWsdError } from '../../core/errors.js';

/** What a plugin that bundles its own copy of wsd throws: another class, the same brand. */
class BundledWsdError extends Error {
  override readonly name = 'WsdError';
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    Object.defineProperty(this, Symbol.for('wsd.error.v1'), { value: true });
  }
}

describe('WsdError brand', () => {
  it('recognises a WsdError of another copy of wsd by its brand, not by instanceof', () => {
    const foreign = new BundledWsdError('NOT_FOUND', 'no such object', 'key');
    assert.equal(foreign instanceof WsdError, false);
    assert.equal(isWsdError(foreign), true);
    assert.equal(isWsdError(foreign, 'NOT_FOUND'), true);
    assert.equal(toWsdError(foreign), foreign, 'kept as it is, code and field included');
    const mapped = toServiceError(foreign);
    assert.equal(mapped.code, status.NOT_FOUND, 'NOT_FOUND stays NOT_FOUND, not INTERNAL');
    assert.equal(mapped.metadata?.get('wsd-field')[0], 'key');
  });

  it('does not take a branded error with a code outside the closed set, nor a plain Error', () => {
    assert.equal(isWsdError(new BundledWsdError('TEAPOT', 'x')), false);
    assert.equal(isWsdError(new Error('x')), false);
    assert.equal(toServiceError(new BundledWsdError('TEAPOT', 'x')).code, status.INTERNAL);
  });
});
