import { createHash } from 'node:crypto';
import { formatBytes } from '../config/units.js';
import type { StatusReport, WorkspaceStatus } from '../observability/status-report.js';

/**
 * The operators' status page: one self-contained HTML document (inline style, no script, no external asset) that
 * reloads itself with `<meta http-equiv="refresh">`. Workspace ids, owners, error texts and plugin names reach it
 * from requests and plugins, so every value goes through {@link html}, which escapes whatever it is not told is
 * markup already; the Content-Security-Policy forbids scripts outright as a second line.
 */

/** Markup that is safe to insert as it is: only {@link html} makes one. */
class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text → HTML text or attribute value (quoted with either quote). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => entities[c]!);
}

/** A template whose interpolated values are escaped, except nested `html` fragments (and arrays of them). */
function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((value, i) => (out += fragment(value) + strings[i + 1]!));
  return new SafeHtml(out);
}

function fragment(value: unknown): string {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

const style = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25rem .6rem .25rem 0; border-bottom: 1px solid #8884; vertical-align: top; }
td.error { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-word; max-width: 60ch; }
.muted { color: var(--muted); }
.ok, .state-ready { color: var(--ok); }
.degraded, .skipped, .state-initializing, .state-disposing { color: var(--warn); }
.failing, .failed, .state-failed, .not-ready { color: var(--bad); font-weight: 600; }
dl { display: grid; grid-template-columns: max-content auto; gap: .15rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
`;

/** The CSP allows exactly this stylesheet and nothing else: no script, no image, no connection, no frame. */
export const statusPageCsp = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers for the page and its JSON twin: never cached, never sniffed, never framed, never sent as a referrer. */
export const statusPageHeaders = {
  'content-security-policy': statusPageCsp,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

export const defaultRefreshSeconds = 10;

/**
 * `?refresh=N` → seconds between reloads (0 = never), bounded to an hour; anything else → the default. A page left
 * open on a wall screen must not hammer the node, nor stop refreshing because of a typo.
 */
export function refreshSeconds(query: URLSearchParams): number {
  const raw = query.get('refresh');
  if (raw === null || !/^\d{1,5}$/.test(raw)) return defaultRefreshSeconds;
  return Math.min(Number(raw), 3600);
}

export function renderStatusPage(report: StatusReport, options: { refreshSeconds: number }): string {
  const refresh = options.refreshSeconds > 0 ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}">` : '';
  const { disk, quota } = report;
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh}
<title>wsd on ${report.node}</title>
<style>${new SafeHtml(style)}</style>
</head>
<body>
<header>
<h1>wsd on <span id="node">${report.node}</span></h1>
<dl>
<dt>Version</dt><dd id="version">${report.version}</dd>
<dt>Ready</dt><dd id="ready" class="${report.ready ? 'ok' : 'not-ready'}">${report.ready ? 'yes' : 'no'}</dd>
<dt>Up</dt><dd id="uptime" title="${report.startedAt}">${duration(report.uptimeSeconds)} (since ${report.startedAt})</dd>
<dt>As of</dt><dd id="generated-at">${report.generatedAt}${options.refreshSeconds > 0 ? html` <span class="muted">· reloads every ${options.refreshSeconds} s</span>` : ''}</dd>
</dl>
</header>

<h2>Disk and quota</h2>
<dl id="disk">
<dt>Working area</dt><dd>${disk.workingArea}</dd>
${
  disk.error !== undefined
    ? html`<dt>Disk</dt><dd class="failing">cannot read: ${disk.error}</dd>`
    : html`<dt>Disk</dt><dd>${formatBytes(disk.usedBytes!)} used of ${formatBytes(disk.totalBytes!)} (${percent(disk.usedBytes!, disk.totalBytes!)}), ${formatBytes(disk.freeBytes!)} free</dd>`
}
<dt>Quota</dt><dd id="quota">${quota.strategy} (${quota.enforces ? 'enforced' : 'not enforced'}): ${quotaUse(quota.usedBytes, quota.limitBytes)} over workspaces on disk</dd>
</dl>

<h2>Health</h2>
${table(['Check', 'Critical', 'Status', 'Reason'], report.health.map((c) => html`<tr><td>${c.name}</td><td>${c.critical ? 'yes' : 'no'}</td><td class="${c.status}">${c.status}</td><td>${c.reason}</td></tr>`), 'health', 'no health checks')}

<h2>Plugins</h2>
${table(['Kind', 'Id', 'Source', 'Status', 'Reason'], report.plugins.map((p) => html`<tr><td>${p.kind}</td><td>${p.id}</td><td>${p.source}</td><td class="${p.status}">${p.status}</td><td>${p.reason}</td></tr>`), 'plugins', 'no plugins')}

<h2>Workspaces (${report.workspaces.length})</h2>
${table(['Id', 'Owner', 'Meta id', 'State', 'Last backup', 'Quota', 'Last error'], report.workspaces.map(workspaceRow), 'workspaces', 'no workspaces on this node')}

<h2>Recent failures</h2>
${table(
  ['Time', 'Workspace', 'Operation', 'Code', 'Error'],
  report.failures.map((f) => html`<tr><td><time datetime="${f.time}">${f.time}</time></td><td>${f.workspaceId}</td><td>${f.operation}</td><td>${f.code}</td><td class="error">${f.error}</td></tr>`),
  'failures',
  'no failures since the daemon started',
)}
<p class="muted">The same as JSON: <a href="/status.json">/status.json</a> · <a href="/readyz">/readyz</a> · <a href="/metrics">/metrics</a></p>
</body>
</html>
`;
  return page.text;
}

function workspaceRow(w: WorkspaceStatus): SafeHtml {
  const backup = w.lastBackup
    ? html`<time datetime="${w.lastBackup.createdAt}" title="${w.lastBackup.createdAt}, ${formatBytes(w.lastBackup.sizeBytes)}">${duration(w.lastBackup.ageSeconds)} ago</time>`
    : html`<span class="muted">${w.remoteStorageDisabled ? 'off (remote storage disabled)' : 'never'}</span>`;
  return html`<tr data-workspace="${w.id}"><td>${w.id}</td><td>${w.owner}</td><td>${w.metaId}</td><td class="state state-${w.state}">${w.state}</td><td class="backup">${backup}</td><td>${quotaUse(w.quota.usedBytes, w.quota.limitBytes)}</td><td class="error">${w.lastError}</td></tr>`;
}

function table(headings: string[], rows: SafeHtml[], id: string, empty: string): SafeHtml {
  return html`<table id="${id}">
<thead><tr>${headings.map((h) => html`<th>${h}</th>`)}</tr></thead>
<tbody>
${rows.length > 0 ? rows.map((row) => html`${row}\n`) : html`<tr><td colspan="${headings.length}" class="muted">${empty}</td></tr>`}
</tbody>
</table>`;
}

function quotaUse(used: number | undefined, limit: number): string {
  const of = limit > 0 ? formatBytes(limit) : 'no limit';
  return used === undefined ? of : `${formatBytes(used)} of ${of}`;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '–';
}


/** 200_000 → "2 d 7 h": the two largest units, enough to tell a stale backup at a glance. */
export function duration(seconds: number): string {
  const parts: Array<[number, string]> = [
    [Math.floor(seconds / 86_400), 'd'],
    [Math.floor((seconds % 86_400) / 3600), 'h'],
    [Math.floor((seconds % 3600) / 60), 'min'],
    [Math.floor(seconds % 60), 's'],
  ];
  const first = parts.findIndex(([value]) => value > 0);
  if (first === -1) return '0 s';
  return parts
    .slice(first, first + 2)
    .filter(([value]) => value > 0)
    .map(([value, unit]) => `${value} ${unit}`)
    .join(' ');
}
