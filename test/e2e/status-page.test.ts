import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WsdClient } from '../../core/api/client.js';
import { packageRoot } from '../../core/config/package-root.js';
import { wsdVersion } from '../../core/version.js';
import { startDaemonProcess, testDaemonConfig, type DaemonProcess } from '../kit/daemon-process.js';
import { until } from '../kit/polling.js';
import { tempDir } from '../kit/temp-dir.js';

/** Debian's Chromium, installed by .ci/install-system-deps; playwright-core drives it and downloads nothing. */
const chromiumPath = '/usr/bin/chromium';
/** Root needs --no-sandbox; the rest keep Chromium off the network, which is closed here. */
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Where the screenshot is kept for people to look at (gitignored). */
const artifactDir = path.join(packageRoot(), 'test-artifacts');

/**
 * Reaches the page through a request field: the snapshot initializer quotes a name it refuses in its error, and
 * that error is shown twice (the workspace's last error, the recent failures). Each part would set a global if it
 * ever ran as markup.
 */
const payload = `x"'&<script>window.pwnedScript=1</script><img src=x onerror="window.pwnedImg=1">`;
/** What of it must be on screen as it is (the error quotes the name as JSON, so its `"` come with a backslash). */
const visiblePayload = `'&<script>window.pwnedScript=1</script><img src=x onerror=`;

describe('status page in headless Chromium (daemon as a child process)', () => {
  let daemon: DaemonProcess;
  let client: WsdClient;
  let browser: Browser;
  const pageUrl = (query: string) => `http://${daemon.httpAddress}/${query}`;

  before(async () => {
    const dir = tempDir('wsd-status-page-');
    daemon = await startDaemonProcess({ args: ['--config', testDaemonConfig(dir)] });
    client = new WsdClient({ address: daemon.grpcAddress });
  });
  after(async () => {
    await browser?.close();
    client?.close();
    if (daemon) assert.equal(await daemon.stop(), 0);
  });

  /** A page that records what it requested and every CSP complaint and script error. */
  async function openPage(): Promise<{ page: Page; requests: string[]; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`console: ${message.text()}`);
    });
    return { page, requests, problems };
  }

  it('shows node, version, workspaces with state and backup age, and a hostile failure as plain text; reloads itself', async () => {
    // In the test, not in a hook: a missing browser is a failed test (with the way to install it), never a skip.
    if (!existsSync(chromiumPath)) assert.fail(`Chromium is not installed at ${chromiumPath}: run .ci/install-system-deps (Debian package "chromium"); the status page test needs it`);
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
    await client.initWorkspace({ id: 'ws-ready', metadata: { owner: 'alice', meta_id: 'm-ready' }, initializer: { empty: {} } });
    await client.backupWorkspace('ws-ready');
    await assert.rejects(client.initWorkspace({ id: 'ws-hostile', metadata: { owner: 'mallory', meta_id: 'm-hostile' }, initializer: { snapshot: { snapshot: payload } } }));
    await assert.rejects(
      client.initWorkspace({ id: 'ws-secret', metadata: { owner: 'bob', meta_id: 'm-secret' }, initializer: { snapshot: { snapshot: 'https://bob:hunter2@127.0.0.1:1/x?sig=hunter3' } } }),
    );

    const { page, requests, problems } = await openPage();
    const response = await page.goto(pageUrl('?refresh=0'));
    assert.equal(response?.status(), 200);
    assert.match(response!.headers()['content-security-policy'] ?? '', /default-src 'none'/);

    assert.equal(await page.locator('#node').innerText(), os.hostname());
    assert.equal(await page.locator('#version').innerText(), wsdVersion);
    assert.equal(await page.locator('#ready').innerText(), 'yes');
    assert.match(await page.locator('#uptime').innerText(), /^\d+ (s|min)/);
    assert.match(await page.locator('#disk').innerText(), /used of .* free/);
    assert.match(await page.locator('#quota').innerText(), /^none \(not enforced\)/);
    assert.match(await page.locator('#plugins').innerText(), /storage\s+local\s+built-in\s+ok/);
    assert.match(await page.locator('#health').innerText(), /working-area\s+yes\s+ok/);

    const row = (id: string) => page.locator(`tr[data-workspace="${id}"]`);
    assert.equal(await row('ws-ready').locator('td.state').innerText(), 'ready');
    assert.match(await row('ws-ready').locator('td.backup').innerText(), /^\d+ (s|min)( \d+ s)? ago$/);
    assert.equal(await row('ws-hostile').locator('td.state').innerText(), 'failed');
    assert.equal(await row('ws-hostile').locator('td.backup').innerText(), 'never');
    // The payload is on screen as the characters it is made of, and none of it ran.
    const lastError = await row('ws-hostile').locator('td.error').innerText();
    assert.ok(lastError.includes(visiblePayload), `the last error shows the payload as text:\n${lastError}`);
    const failures = await page.locator('#failures tbody').innerText();
    assert.ok(failures.includes(visiblePayload), `the failure lists the payload as text:\n${failures}`);
    assert.match(failures, /ws-hostile\s+init\s+INVALID_ARGUMENT/);
    const globals = await page.evaluate(() => [(globalThis as Record<string, unknown>).pwnedScript, (globalThis as Record<string, unknown>).pwnedImg]);
    assert.deepEqual(globals, [undefined, undefined], 'no injected script ran');
    assert.equal(await page.locator('#failures script, #failures img, #workspaces script, #workspaces img').count(), 0);
    // Secrets a request quoted are scrubbed before they reach the page.
    const text = await page.locator('body').innerText();
    assert.ok(!text.includes('hunter2') && !text.includes('hunter3'), 'no secret on the page');
    assert.match(await row('ws-secret').locator('td.error').innerText(), /https:\/\/\*\*\*@127\.0\.0\.1:1\/x\?\*\*\*/);
    // The inline stylesheet applies: the CSP hash matches it.
    type WithComputedStyle = { getComputedStyle(element: unknown): { borderCollapse: string } };
    assert.equal(await page.locator('#workspaces').evaluate((table) => (globalThis as unknown as WithComputedStyle).getComputedStyle(table).borderCollapse), 'collapse');
    assert.deepEqual(problems, []);
    assert.deepEqual(requests.filter((url) => !url.startsWith(`http://${daemon.httpAddress}/`)), [], 'nothing requested from anywhere else');

    // Left open, the page reloads by itself and shows a workspace added meanwhile.
    const live = await openPage();
    let loads = 0;
    live.page.on('load', () => loads++);
    await live.page.goto(pageUrl('?refresh=1'));
    assert.equal(await live.page.locator('tr[data-workspace="ws-late"]').count(), 0);
    await client.initWorkspace({ id: 'ws-late', metadata: { owner: 'carol', meta_id: 'm-late' }, initializer: { empty: {} } });
    await until(
      async () => (await live.page.locator('tr[data-workspace="ws-late"] td.state').innerText({ timeout: 1000 }).catch(() => '')) === 'ready',
      'the page to reload itself and list ws-late as ready',
      30_000,
    );
    assert.ok(loads >= 2, `the page reloaded itself (${loads} loads)`);
    assert.deepEqual(live.problems, []);

    mkdirSync(artifactDir, { recursive: true });
    const screenshot = path.join(artifactDir, 'status-page.png');
    await page.reload();
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(statSync(screenshot).size > 1000);
    console.log(`status page screenshot: ${screenshot}`);
  });
});

describe('status page turned off', () => {
  it('http.statusPage: false leaves / and /status.json unanswered (404); the probes stay', async () => {
    const dir = tempDir('wsd-status-page-off-');
    const file = testDaemonConfig(dir);
    const http = 'http:\n  address: 127.0.0.1:0\n';
    assert.ok(readFileSync(file, 'utf8').includes(http));
    writeFileSync(file, readFileSync(file, 'utf8').replace(http, `${http}  statusPage: false\n`));
    const daemon = await startDaemonProcess({ args: ['--config', file] });
    try {
      assert.equal((await fetch(`http://${daemon.httpAddress}/`)).status, 404);
      assert.equal((await fetch(`http://${daemon.httpAddress}/status.json`)).status, 404);
      assert.equal((await fetch(`http://${daemon.httpAddress}/healthz`)).status, 200);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});
