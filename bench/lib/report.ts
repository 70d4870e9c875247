import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Summary } from './stats.js';

export type Unit = 's' | 'ms' | 'µs' | 'bytes' | 'MB' | 'req/s';

/** One measured side of a line: wsd, or the baseline it is read against. */
export interface Side {
  label: string;
  unit: Unit;
  summary: Summary;
}

/** A target of the issue, checked against a line's ratio (or its wsd median when the target is absolute). */
export interface Target {
  text: string;
  pass: boolean;
}

/** One row of the table. */
export interface Line {
  id: string;
  what: string;
  wsd: Side;
  baseline?: Side;
  /** Computed from the medians; `ratioMeaning` says which way is good. */
  ratio?: number;
  ratioMeaning?: string;
  target?: Target;
  note?: string;
}

/** Builds a line whose ratio divides medians: `baseline / wsd` for times (>1 = wsd faster) unless `ratio` says otherwise. */
export function line(options: {
  id: string;
  what: string;
  wsd: Side;
  baseline?: Side;
  ratio?: { value: number; meaning: string };
  target?: { text: string; check: (ratio: number, wsd: Summary) => boolean };
  note?: string;
}): Line {
  const ratio = options.ratio?.value;
  const subject = ratio ?? options.wsd.summary.median;
  return {
    id: options.id,
    what: options.what,
    wsd: options.wsd,
    ...(options.baseline ? { baseline: options.baseline } : {}),
    ...(options.ratio ? { ratio: options.ratio.value, ratioMeaning: options.ratio.meaning } : {}),
    ...(options.target ? { target: { text: options.target.text, pass: options.target.check(subject, options.wsd.summary) } } : {}),
    ...(options.note ? { note: options.note } : {}),
  };
}

export function formatValue(value: number, unit: Unit): string {
  switch (unit) {
    case 's':
      return value >= 10 ? `${value.toFixed(1)} s` : `${value.toFixed(2)} s`;
    case 'ms':
      return `${value.toFixed(value >= 100 ? 0 : 1)} ms`;
    case 'µs':
      return `${value.toFixed(0)} µs`;
    case 'bytes':
      return value >= 1024 * 1024 ? `${(value / 1024 / 1024).toFixed(1)} MiB` : value >= 1024 ? `${(value / 1024).toFixed(1)} KiB` : `${value} B`;
    case 'MB':
      return `${value.toFixed(0)} MB`;
    case 'req/s':
      return `${value.toFixed(0)} req/s`;
  }
}

function formatSide(side: Side | undefined): string {
  if (!side) return '';
  const { median, min, max, samples } = side.summary;
  const spread = samples.length > 1 ? ` (${formatValue(min, side.unit)}–${formatValue(max, side.unit)})` : '';
  return `${side.label}: ${formatValue(median, side.unit)}${spread}`;
}

/** The table printed at the end of a run: medians with their spread, the ratio and the target of each line. */
export function formatTable(lines: Line[]): string {
  const rows = lines.map((l) => [
    l.what,
    formatSide(l.baseline),
    formatSide(l.wsd),
    l.ratio === undefined ? '' : `${l.ratio < 0.01 ? l.ratio.toPrecision(2) : l.ratio.toFixed(2)} ${l.ratioMeaning ?? ''}`.trim(),
    l.target?.text ?? '',
    l.target ? (l.target.pass ? 'pass' : 'MISS') : 'info',
  ]);
  const header = ['figure', 'baseline median (min–max)', 'wsd median (min–max)', 'ratio', 'target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [format(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(format)].join('\n');
}

/** The same table in Markdown, for docs/performance.md ("Last full run"). */
export function formatMarkdown(lines: Line[]): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = lines.map((l) =>
    [
      l.what,
      formatSide(l.baseline),
      formatSide(l.wsd),
      l.ratio === undefined ? '' : `${l.ratio < 0.01 ? l.ratio.toPrecision(2) : l.ratio.toFixed(2)} ${l.ratioMeaning ?? ''}`.trim(),
      l.target ? `${l.target.text}: ${l.target.pass ? 'pass' : '**miss**'}` : '',
    ].map(cell),
  );
  return [
    '| figure | baseline median (min–max) | wsd median (min–max) | ratio | target |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Where the run happened: read the ratios with this in mind (a shared 2-core machine swings 2× between runs). */
export function environment(): Record<string, unknown> {
  return {
    host: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    node: process.version,
    loadAverage: os.loadavg(),
  };
}

/**
 * Writes `<timestamp>.json` and the table as `<timestamp>.md` into `resultsDir` (bench/results in the source tree,
 * not dist/) and returns the JSON's path.
 */
export function writeResults(resultsDir: string, document: Record<string, unknown>, markdown: string): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  writeFileSync(file.replace(/\.json$/, '.md'), `${markdown}\n`);
  return file;
}
