import { z } from 'zod';
import { stringify } from 'yaml';
import type { AnyPlugin, PluginKind } from '../kernel/plugin.js';
import type { PluginCatalog } from '../kernel/registry.js';
import { rootConfigSchema } from './root-schema.js';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  enum?: unknown[];
}

const pluginSections: Record<string, PluginKind> = { storage: 'storage', quota: 'quota', initializers: 'initializer', health: 'health' };

/**
 * The complete default config as commented YAML: every root setting and every known plugin's section, each field
 * with its description and default. Valid input to `wsd run` as it is.
 */
export function renderDefaults(catalog: PluginCatalog): string {
  const root = toJsonSchema(rootConfigSchema);
  const lines: string[] = ['# wsd configuration: every setting with its default.', ''];
  for (const [key, field] of Object.entries(root?.properties ?? {})) {
    const kind = pluginSections[key];
    if (!kind) {
      lines.push(...renderField(key, field, 0), '');
      continue;
    }
    lines.push(...comment(field.description, 0), `${key}:`);
    const entries = catalog.all().filter((e) => e.plugin.kind === kind);
    if (kind === 'storage' || kind === 'quota') {
      const chosen = (field.properties?.plugin?.default as string | undefined) ?? entries[0]?.plugin.id;
      lines.push(...comment(`One of: ${entries.map((e) => e.plugin.id).join(', ')}.`, 2), `  plugin: ${chosen}`);
    }
    const chosen = kind === 'storage' || kind === 'quota' ? ((field.properties?.plugin?.default as string | undefined) ?? entries[0]?.plugin.id) : undefined;
    for (const { plugin, source } of entries) {
      // Sections of single-slot plugins that are not chosen are shown commented out: they are validated when present,
      // and one with a required setting (a bucket) would make the printed defaults invalid.
      const enabledByDefault = chosen !== undefined ? plugin.id === chosen : defaultKeys(field).includes(plugin.id);
      lines.push(...renderPlugin(plugin, source, enabledByDefault));
    }
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function renderPlugin(plugin: AnyPlugin, source: string, enabled: boolean): string[] {
  const about = [plugin.description, source === 'built-in' ? undefined : `from ${source}`].filter(Boolean).join(' — ');
  const schema = plugin.configSchema ? toJsonSchema(plugin.configSchema) : undefined;
  const body = schema?.properties
    ? Object.entries(schema.properties).flatMap(([k, f]) => renderField(k, f, 4))
    : [];
  const lines = [...comment(about, 2), body.length ? `  ${plugin.id}:` : `  ${plugin.id}: {}`, ...body];
  // Multi-slot plugins not enabled by default are shown commented out: present in the file, switched off.
  return enabled ? lines : lines.map(commentOut);
}

function renderField(key: string, field: JsonSchema, indent: number): string[] {
  const pad = ' '.repeat(indent);
  const lines = comment(field.description, indent);
  if (field.properties) {
    const children = Object.entries(field.properties).flatMap(([k, f]) => renderField(k, f, indent + 2));
    // A section whose fields are all unset would read back as `key: null`; `{}` keeps the file valid.
    const block = [children.every((l) => /^\s*#/.test(l)) ? `${pad}${key}: {}` : `${pad}${key}:`, ...children];
    // An optional section with no default (e.g. api.tls) is shown switched off: present, commented out.
    lines.push(...(field.default === undefined ? block.map(commentOut) : block));
  } else if (field.default !== undefined) {
    lines.push(...yamlValue(key, field.default, pad));
  } else {
    lines.push(`${pad}# ${key}: (not set)`);
  }
  return lines;
}

function yamlValue(key: string, value: unknown, pad: string): string[] {
  return stringify({ [key]: value }, { indent: 2 }).trimEnd().split('\n').map((l) => pad + l);
}

/** Turns a YAML line into a comment at the same indentation; comments stay as they are. */
const commentOut = (line: string): string => (/^\s*#/.test(line) ? line : line.replace(/^( *)/, '$1# '));

function comment(text: string | undefined, indent: number): string[] {
  return text ? text.split('\n').map((l) => `${' '.repeat(indent)}# ${l}`) : [];
}

function defaultKeys(field: JsonSchema): string[] {
  return field.default && typeof field.default === 'object' ? Object.keys(field.default) : [];
}

/** JSON Schema of a zod schema (also from another copy of zod 4); undefined for other Standard Schemas. */
function toJsonSchema(schema: unknown): JsonSchema | undefined {
  try {
    return z.toJSONSchema(schema as z.ZodType, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    return undefined;
  }
}
