/**
 * Secrets out of everything wsd writes down — logs, state files, error texts — by construction, at the few places
 * text leaves the daemon, rather than by remembering at every call site.
 *
 * What counts as a secret: the userinfo of a URL (`https://user:TOKEN@host/`), the query string of an http(s) URL
 * (presigned URLs carry their signature there: `X-Amz-Signature`, `sig`, `token`…), and the values of fields named
 * like credentials.
 */

/** Longer texts are cut before scrubbing (and so are bounded wherever they are written). */
export const maxScrubbedLength = 8192;

/**
 * `scheme://user:pass@` → `scheme://***@`; the query and fragment of http(s) URLs → `?***`. Texts longer than
 * {@link maxScrubbedLength} are cut first: the patterns are bounded, so scrubbing costs at most a few milliseconds
 * whatever a request holds (unbounded ones took seconds on 80 KB of `http:`).
 */
export function scrubSecrets(text: string): string {
  if (text.length > maxScrubbedLength) text = `${text.slice(0, maxScrubbedLength)}…(${text.length} characters)`;
  if (!/:\/|https?:/i.test(text)) return text;
  // Quotes do not end a URL here: `gh'TOKEN` is a valid userinfo, `o'brien.tgz?sig=…` a valid path. The userinfo
  // runs to the *last* `@` of the authority (a password may hold `@`), and `http:/host` or `http:host` are URLs to
  // the WHATWG parser too. Scrubbing a little too much of a message is fine; leaving a token is not.
  return text
    .replace(/\b([a-z][a-z0-9+.-]{0,31}:\/\/)[^/\s<>?#]{0,1024}@/gi, '$1***@')
    .replace(/\b(https?:\/{0,2}[^\s<>?#]{0,2048})[?#][^\s<>]*/gi, '$1?***');
}

/** Field names whose values are credentials, at any depth of a persisted or logged object. */
const secretKey = /^(auth_password|auth_ots|authPassword|authOts|password|passwd|secret|token|access_?token|secret_?access_?key|secretAccessKey|private_?key|privateKey|credentials?|authorization|cookie|hmac_?key)$/i;

/** A copy of `value` with secret fields replaced and every string scrubbed ({@link scrubSecrets}), at any depth. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (value === null || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value instanceof Date) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, secretKey.test(k) && v !== undefined && v !== null && v !== '' ? '(redacted)' : redactValue(v, depth + 1)]),
  );
}
