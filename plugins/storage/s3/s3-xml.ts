/**
 * The few S3 XML answers storage/s3 reads, taken apart by hand. The minio client's parser turns element text that
 * looks like a number into one (a key `00123` would come back as `123`, `0x1A` as `26`), so listings and upload ids
 * are read here as the strings they are. S3 answers are flat, machine-written XML: a tag's text is what lies between
 * `<Tag>` and `</Tag>`, with the five XML entities and numeric character references to decode.
 */

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlText(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return entities[name] ?? whole;
  });
}

/** Text of the first `<tag>` in `xml` (decoded), or undefined. */
export function tagText(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml);
  if (match) return decodeXmlText(match[1]!);
  return new RegExp(`<${tag}(?:\\s[^>]*)?/>`).test(xml) ? '' : undefined;
}

/** Every `<tag>…</tag>` block's inner XML, in order. */
export function blocks(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);
}

/** The ETag without its quotes (S3 sends `"…"`; XML bodies carry them as entities). */
export function normalizeEtag(etag: string | undefined): string {
  return (etag ?? '').trim().replace(/^W\//, '').replace(/^"+|"+$/g, '');
}

/** Keys in listings come URL-encoded (`encoding-type=url`): `+` is a space, `%2B` a plus. */
function decodeListedKey(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

export interface ListedObject {
  key: string;
  size: number;
  modifiedAt: Date;
  etag: string;
}

export interface ListPage {
  objects: ListedObject[];
  /** Set when more keys follow. */
  continuationToken: string | undefined;
}

/** A ListObjectsV2 answer (requested with `encoding-type=url`). */
export function parseListObjectsV2(xml: string): ListPage {
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new Error(`not a ListBucketResult: ${xml.slice(0, 200)}`);
  const urlEncoded = tagText(xml, 'EncodingType') === 'url';
  const objects = blocks(xml, 'Contents').map((inner) => {
    const rawKey = tagText(inner, 'Key') ?? '';
    return {
      key: urlEncoded ? decodeListedKey(rawKey) : rawKey,
      size: Number(tagText(inner, 'Size') ?? '0'),
      modifiedAt: new Date(tagText(inner, 'LastModified') ?? 0),
      etag: normalizeEtag(tagText(inner, 'ETag')),
    };
  });
  const truncated = tagText(xml, 'IsTruncated') === 'true';
  const token = tagText(xml, 'NextContinuationToken');
  return { objects, continuationToken: truncated && token ? token : undefined };
}

export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** A ListMultipartUploads answer (requested with `encoding-type=url`). */
export function parseListMultipartUploads(xml: string): { uploads: IncompleteUpload[]; next: { keyMarker: string; uploadIdMarker: string } | undefined } {
  if (!/<ListMultipartUploadsResult[\s>]/.test(xml)) throw new Error(`not a ListMultipartUploadsResult: ${xml.slice(0, 200)}`);
  const urlEncoded = tagText(xml, 'EncodingType') === 'url';
  const uploads = blocks(xml, 'Upload').map((inner) => {
    const rawKey = tagText(inner, 'Key') ?? '';
    return {
      key: urlEncoded ? decodeListedKey(rawKey) : rawKey,
      uploadId: tagText(inner, 'UploadId') ?? '',
      initiated: new Date(tagText(inner, 'Initiated') ?? 0),
    };
  });
  const truncated = tagText(xml, 'IsTruncated') === 'true';
  const keyMarker = tagText(xml, 'NextKeyMarker');
  const uploadIdMarker = tagText(xml, 'NextUploadIdMarker');
  const next = truncated && keyMarker !== undefined ? { keyMarker: urlEncoded ? decodeListedKey(keyMarker) : keyMarker, uploadIdMarker: uploadIdMarker ?? '' } : undefined;
  return { uploads, next };
}

/** An `<Error>` document: S3's error answers, and the 200 answers of Complete/Copy that failed after all. */
export function parseErrorDocument(xml: string): { code: string; message: string; requestId?: string } | undefined {
  if (!/<Error[\s>]/.test(xml)) return undefined;
  const requestId = tagText(xml, 'RequestId');
  return { code: tagText(xml, 'Code') ?? '', message: tagText(xml, 'Message') ?? '', ...(requestId ? { requestId } : {}) };
}

/** The body of CompleteMultipartUpload: the parts in order with their ETags. */
export function completeMultipartBody(parts: ReadonlyArray<{ partNumber: number; etag: string }>): string {
  const items = parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>"${p.etag}"</ETag></Part>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${items}</CompleteMultipartUpload>`;
}

/** The body of CreateBucket outside us-east-1 (where it must be empty). */
export function createBucketBody(region: string): string {
  if (region === 'us-east-1') return '';
  return `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${region}</LocationConstraint></CreateBucketConfiguration>`;
}
