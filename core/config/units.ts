/**
 * The notations of durations and sizes, shared by the config schemas and the CLI flags so that `--timeout 1m30s`
 * means what `retryTimeout: 1m30s` means. No dependencies: the CLI parses flags before loading anything else.
 */

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * `90s`, `15m`, `1h30m`, `500ms` in milliseconds, and with `plainNumber` a bare number of seconds; undefined for
 * anything else. (In a config file a bare number is a YAML number, so a string must carry its unit.)
 */
export function parseDurationMs(text: string, options: { plainNumber?: boolean } = {}): number | undefined {
  const compact = text.replace(/\s+/g, '');
  if (/^\d+(?:\.\d+)?$/.test(compact)) return options.plainNumber ? Number(compact) * 1000 : undefined;
  const parts = [...compact.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== compact) return undefined;
  return parts.reduce((ms, p) => ms + Number(p[1]) * durationUnits[p[2]!]!, 0);
}

const sizeUnits: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** `10GiB`, `512MiB`, `1.5TiB`, `100B` in bytes, and with `plainNumber` a bare number of bytes; undefined otherwise. */
export function parseSizeBytes(text: string, options: { plainNumber?: boolean } = {}): number | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return options.plainNumber ? Number(trimmed) : undefined;
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)$/.exec(trimmed);
  return match ? Math.floor(Number(match[1]) * sizeUnits[match[2]!]!) : undefined;
}

/** `12.3 GiB`, `512 B`: sizes for people (binary units, as the config's sizes), next to or instead of a byte count. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
