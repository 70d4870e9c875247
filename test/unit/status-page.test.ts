import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ProbeServer } from '../../core/api/http-server.js';
import { duration, escapeHtml, refreshSeconds, renderStatusPage, statusPageCsp } from '../../core/api/status-page.js';
import type { StatusReport } from '../../core/observability/status-report.js';

/** Breaks out of text, of either attribute quote, and runs script if anything is left unescaped. */
const evil = `x"'&<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`;

/** A report whose every text field holds {@link evil} (plus a marker, so each field's value can be found). */
function hostileReport(): StatusReport {
  const v = (field: string) => `${field}:${evil}`;
  return {
    generatedAt: '2026-11-29T12:00:00.000Z',
    node: v('node'),
    version: v('version'),
    startedAt: '2026-11-28T10:00:00.000Z',
    uptimeSeconds: 93_600,
    ready: false,
    health: [{ name: v('check'), critical: true, status: 'failing', reason: v('check-reason') }],
    plugins: [{ kind: v('kind'), id: v('plugin'), source: v('source'), status: 'failed', reason: v('plugin-reason') }],
    disk: { workingArea: v('working-area'), error: v('disk-error') },
    quota: { strategy: v('strategy'), enforces: true, reportsUsage: true, limitBytes: 10 * 1024 ** 3, usedBytes: 1536 },
    workspaces: [
      {
        id: v('id'),
        owner: v('owner'),
        metaId: v('meta'),
        state: v('state') as 'ready',
        initializer: v('initializer'),
        createdAt: v('created'),
        updatedAt: v('updated'),
        remoteStorageDisabled: false,
        lastBackup: { createdAt: v('backup-created'), ageSeconds: 125, sizeBytes: 2048, key: v('backup-key') },
        quota: { limitBytes: 0 },
        lastError: v('last-error'),
      },
    ],
    failures: [{ time: v('time'), workspaceId: v('failure-id'), operation: v('operation'), code: v('code'), error: v('failure-error') }],
  };
}

/** Every tag of the page, with its attributes; fails on anything that is not a plain tag with quoted attributes. */
function tags(page: string): Array<{ name: string; attributes: Record<string, string> }> {
  const found: Array<{ name: string; attributes: Record<string, string> }> = [];
  for (const [whole, name, rest] of page.matchAll(/<\/?([a-zA-Z][a-zA-Z0-9]*)([^>]*)>/g)) {
    const attributes: Record<string, string> = {};
    const leftover = rest!.replace(/\s([a-z-]+)="([^"]*)"/g, (_, key: string, value: string) => {
      attributes[key] = value;
      return '';
    });
    assert.match(leftover, /^\s*$/, `unexpected markup in ${whole}`);
    found.push({ name: name!.toLowerCase(), attributes });
  }
  return found;
}

describe('status page rendering', () => {
  it('escapes every value: hostile ids, owners, errors and plugin names stay text', () => {
    const page = renderStatusPage(hostileReport(), { refreshSeconds: 10 });
    assert.ok(!page.includes(evil), 'the raw payload is nowhere');
    assert.doesNotMatch(page, /<script|<img/i);
    const fields = ['node', 'version', 'check', 'check-reason', 'kind', 'plugin', 'source', 'plugin-reason', 'working-area', 'disk-error',
      'strategy', 'id', 'owner', 'meta', 'state', 'last-error', 'backup-created', 'failure-id', 'operation', 'code', 'failure-error', 'time'];
    for (const field of fields) assert.ok(page.includes(escapeHtml(`${field}:${evil}`)), `${field} is shown, escaped`);
    // The page is made of the tags and attributes it was written with, nothing a value could have added.
    const allowedTags = new Set(['html', 'head', 'meta', 'title', 'style', 'body', 'header', 'h1', 'h2', 'dl', 'dt', 'dd', 'span',
      'table', 'thead', 'tbody', 'tr', 'th', 'td', 'time', 'p', 'a']);
    const allowedAttributes = new Set(['lang', 'charset', 'name', 'content', 'http-equiv', 'id', 'class', 'title', 'datetime', 'colspan', 'data-workspace', 'href']);
    for (const tag of tags(page.replace(/^<!doctype html>/, ''))) {
      assert.ok(allowedTags.has(tag.name), `tag ${tag.name}`);
      for (const attribute of Object.keys(tag.attributes)) assert.ok(allowedAttributes.has(attribute), `attribute ${attribute} on ${tag.name}`);
    }
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('loads nothing from anywhere: no script, no stylesheet link, no image, links only to its own paths', () => {
    const report = hostileReport();
    report.workspaces[0]!.lastError = 'clone of https://***@example.com/repo failed';
    const page = renderStatusPage(report, { refreshSeconds: 10 });
    const all = tags(page.replace(/^<!doctype html>/, ''));
    assert.deepEqual(all.filter((t) => ['script', 'link', 'img', 'iframe', 'object', 'embed', 'base', 'form'].includes(t.name)), []);
    const targets = all.flatMap((t) => [t.attributes.href, t.attributes.src].filter((v): v is string => v !== undefined));
    assert.deepEqual(targets.sort(), ['/metrics', '/readyz', '/status.json']);
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!;
    assert.doesNotMatch(style, /url\(|@import/);
    // The CSP names the one inline stylesheet by hash and allows nothing else (no script-src: default-src 'none').
    assert.ok(statusPageCsp.includes(`'sha256-${createHash('sha256').update(style).digest('base64')}'`));
    assert.match(statusPageCsp, /default-src 'none'/);
    assert.doesNotMatch(statusPageCsp, /script-src|unsafe|https?:|\*/);
  });

  it('refreshes itself as asked, within bounds; shows ages and sizes a person reads', () => {
    assert.match(renderStatusPage(hostileReport(), { refreshSeconds: 7 }), /<meta http-equiv="refresh" content="7">/);
    assert.doesNotMatch(renderStatusPage(hostileReport(), { refreshSeconds: 0 }), /http-equiv/);
    assert.equal(refreshSeconds(new URLSearchParams('')), 10);
    assert.equal(refreshSeconds(new URLSearchParams('refresh=2')), 2);
    assert.equal(refreshSeconds(new URLSearchParams('refresh=0')), 0);
    assert.equal(refreshSeconds(new URLSearchParams('refresh=99999')), 3600);
    assert.equal(refreshSeconds(new URLSearchParams('refresh=-1')), 10);
    assert.equal(refreshSeconds(new URLSearchParams('refresh=1e3')), 10);
    assert.equal(duration(0), '0 s');
    assert.equal(duration(125), '2 min 5 s');
    assert.equal(duration(93_600), '1 d 2 h');
    assert.equal(duration(86_400 + 30), '1 d');
    const page = renderStatusPage(hostileReport(), { refreshSeconds: 10 });
    assert.match(page, /2 min 5 s ago/);
    assert.match(page, /1\.5 KiB of 10\.0 GiB/);
  });
});

describe('status page on the probe server', () => {
  async function serve(status?: () => Promise<StatusReport>) {
    const server = new ProbeServer({
      metrics: new Registry(),
      running: () => true,
      health: async () => ({ ready: true, checks: [] }),
      ...(status ? { status } : {}),
    });
    const address = await server.listen('127.0.0.1:0');
    return { url: (p: string) => `http://${address}${p}`, close: () => server.close() };
  }

  it('serves / as HTML and /status.json as JSON, both with a strict CSP and no caching', async () => {
    const report = hostileReport();
    const server = await serve(async () => report);
    try {
      const page = await fetch(server.url('/?refresh=3'));
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(page.headers.get('content-security-policy'), statusPageCsp);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(page.headers.get('x-frame-options'), 'DENY');
      assert.equal(page.headers.get('cache-control'), 'no-store');
      const text = await page.text();
      assert.match(text, /content="3"/);
      assert.ok(!text.includes(evil));

      const json = await fetch(server.url('/status.json'));
      assert.equal(json.headers.get('content-type'), 'application/json');
      assert.equal(json.headers.get('content-security-policy'), statusPageCsp);
      assert.deepEqual(await json.json(), report);

      assert.equal((await fetch(server.url('/status.json'), { method: 'POST' })).status, 405);
      assert.equal((await fetch(server.url('/index.html'))).status, 404);
    } finally {
      await server.close();
    }
  });

  it('answers 404 on / and /status.json when the status page is off', async () => {
    const server = await serve();
    try {
      assert.equal((await fetch(server.url('/'))).status, 404);
      assert.equal((await fetch(server.url('/status.json'))).status, 404);
      assert.equal((await fetch(server.url('/healthz'))).status, 200);
    } finally {
      await server.close();
    }
  });
});
