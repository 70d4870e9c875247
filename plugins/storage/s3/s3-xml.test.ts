import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { completeMultipartBody, normalizeEtag, parseErrorDocument, parseListMultipartUploads, parseListObjectsV2 } from './s3-xml.js';

describe('storage/s3 XML answers', () => {
  it('reads listed keys as strings, URL-decoded, with their etags unquoted', () => {
    const page = parseListObjectsV2(`<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<Contents><Key>00123</Key><LastModified>2026-11-29T04:41:31.000Z</LastModified><ETag>&#34;5d41402abc4b2a76b9719d911017c592&#34;</ETag><Size>5</Size></Contents>
<Contents><Key>0x1A</Key><LastModified>2026-11-29T04:41:31.000Z</LastModified><ETag>&quot;abc-2&quot;</ETag><Size>12</Size></Contents>
<Contents><Key>a+b%2Bc/%E6%96%87%F0%9F%98%80</Key><LastModified>2026-11-29T04:41:31.000Z</LastModified><ETag>"x"</ETag><Size>0</Size></Contents>
<Contents><Key>1e5</Key><LastModified>2026-11-29T04:41:31.000Z</LastModified><ETag>"y"</ETag><Size>1</Size></Contents>
<NextContinuationToken>1234</NextContinuationToken></ListBucketResult>`);
    // minio-js' own parser turns "00123" into 123 and "0x1A" into 26.
    assert.deepEqual(page.objects.map((o) => o.key), ['00123', '0x1A', 'a b+c/文😀', '1e5']);
    assert.deepEqual(page.objects.map((o) => o.etag), ['5d41402abc4b2a76b9719d911017c592', 'abc-2', 'x', 'y']);
    assert.deepEqual(page.objects.map((o) => o.size), [5, 12, 0, 1]);
    assert.equal(page.objects[0]!.modifiedAt.toISOString(), '2026-11-29T04:41:31.000Z');
    assert.equal(page.continuationToken, '1234', 'a token that looks like a number stays a string');
  });

  it('ends a listing when it is not truncated', () => {
    const page = parseListObjectsV2('<ListBucketResult><IsTruncated>false</IsTruncated><NextContinuationToken>t</NextContinuationToken></ListBucketResult>');
    assert.deepEqual(page, { objects: [], continuationToken: undefined });
    assert.throws(() => parseListObjectsV2('<Error><Code>x</Code></Error>'), /not a ListBucketResult/);
  });

  it('reads multipart upload listings and error documents', () => {
    const uploads = parseListMultipartUploads(
      '<ListMultipartUploadsResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextKeyMarker>k%2B1</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker><Upload><Key>k%2B1</Key><UploadId>u1</UploadId><Initiated>2026-11-29T04:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>',
    );
    assert.deepEqual(uploads.uploads, [{ key: 'k+1', uploadId: 'u1', initiated: new Date('2026-11-29T04:00:00.000Z') }]);
    assert.deepEqual(uploads.next, { keyMarker: 'k+1', uploadIdMarker: 'u1' });
    assert.deepEqual(parseErrorDocument('<Error><Code>SlowDown</Code><Message>Please &amp; thanks</Message><RequestId>r1</RequestId></Error>'), {
      code: 'SlowDown',
      message: 'Please & thanks',
      requestId: 'r1',
    });
    assert.equal(parseErrorDocument('<CompleteMultipartUploadResult><ETag>"e"</ETag></CompleteMultipartUploadResult>'), undefined);
  });

  it('writes the CompleteMultipartUpload body and normalizes etags', () => {
    assert.match(completeMultipartBody([{ partNumber: 1, etag: 'aa' }, { partNumber: 2, etag: 'bb' }]), /<Part><PartNumber>1<\/PartNumber><ETag>"aa"<\/ETag><\/Part><Part><PartNumber>2<\/PartNumber><ETag>"bb"<\/ETag><\/Part><\/CompleteMultipartUpload>$/);
    assert.equal(normalizeEtag('"abc"'), 'abc');
    assert.equal(normalizeEtag('W/"abc"'), 'abc');
    assert.equal(normalizeEtag('abc-3'), 'abc-3');
    assert.equal(normalizeEtag(undefined), '');
  });
});
