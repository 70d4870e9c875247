import protobuf from 'protobufjs';
import { WsdError } from '../errors.js';
import { protoDir } from './proto.js';

let root: protobuf.Root | undefined;

function loadRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => `${protoDir()}/${target}`;
    root.loadSync(['content-service-api/initializer.proto', 'wsdaemon/daemon.proto', 'wsd/v1/admin.proto'], { keepCase: true });
    root.resolveAll();
  }
  return root;
}

/**
 * Reads a message written in the proto3 JSON mapping (lowerCamel JSON names such as `remoteUri`, `cloneTaget`, or
 * the original field names; enums by name or number; int64 as number or string) into the object shape the gRPC
 * client sends. Unknown fields and wrong types are `INVALID_ARGUMENT` naming the path.
 */
export function fromProtoJson(typeName: string, json: unknown): Record<string, unknown> {
  const type = loadRoot().lookupType(typeName);
  const message = type.fromObject(normalize(type, json, ''));
  return type.toObject(message, { enums: String, longs: Number, oneofs: true }) as Record<string, unknown>;
}

/**
 * Writes a message, as grpc-js hands it over (field names as in the .proto, enums by name, int64 as numbers), in the
 * proto3 JSON mapping — what `--json` prints and what `fromProtoJson` and grpcurl read: lowerCamel JSON names,
 * enums by name, 64-bit integers as decimal strings, bytes as base64. Fields with default values are included
 * (the mapping's "emit defaults" option), so a script finds `"exists": false` rather than nothing; unset
 * message fields are left out.
 */
export function toProtoJson(typeName: string, value: unknown): Record<string, unknown> {
  return messageToJson(loadRoot().lookupType(typeName), value ?? {});
}

const int64Types = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function messageToJson(type: protobuf.Type, value: unknown): Record<string, unknown> {
  const message = (value ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const raw = message[field.name];
    // Unset message fields, and unset proto3 `optional` scalars (their synthetic oneof names no member).
    if (raw === undefined || raw === null) continue;
    if (field.partOf && field.partOf.name.startsWith('_') && message[field.partOf.name] !== field.name) continue;
    const one = (item: unknown): unknown => scalarToJson(field, item);
    out[jsonName(field.name)] = field.map
      ? Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, one(v)]))
      : field.repeated
        ? (raw as unknown[]).map(one)
        : one(raw);
  }
  return out;
}

function scalarToJson(field: protobuf.Field, value: unknown): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageToJson(resolved, value);
  if (resolved instanceof protobuf.Enum) return typeof value === 'number' ? (resolved.valuesById[value] ?? value) : value;
  if (int64Types.has(field.type)) return String(value);
  if (field.type === 'bytes') return Buffer.isBuffer(value) ? value.toString('base64') : value;
  return value;
}

/** protoc's JSON name: underscores dropped, the next letter upper-cased (`upstream_Remote_uri` → `upstreamRemoteUri`). */
export function jsonName(field: string): string {
  return field.replace(/_+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function normalize(type: protobuf.Type, value: unknown, at: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WsdError('INVALID_ARGUMENT', `${at || type.name}: expected an object for ${type.fullName.slice(1)}`, { field: at });
  }
  const out: Record<string, unknown> = {};
  for (const oneof of type.oneofsArray) {
    const set = Object.keys(value).filter((key) => oneof.fieldsArray.some((f) => f.name === key || jsonName(f.name) === key));
    if (set.length > 1) {
      throw new WsdError('INVALID_ARGUMENT', `${at || type.name}: only one of ${set.join(', ')} may be set (${oneof.name})`, { field: at });
    }
  }
  for (const [key, raw] of Object.entries(value)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => jsonName(f.name) === key);
    const path = at ? `${at}.${key}` : key;
    if (!field) {
      throw new WsdError('INVALID_ARGUMENT', `${path}: unknown field of ${type.fullName.slice(1)} (fields: ${Object.values(type.fields).map((f) => jsonName(f.name)).join(', ')})`, { field: path });
    }
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (nested && !field.map) {
      out[field.name] = field.repeated
        ? asArray(raw, path).map((item, i) => normalize(nested, item, `${path}[${i}]`))
        : normalize(nested, raw, path);
    } else if (field.map) {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new WsdError('INVALID_ARGUMENT', `${path}: expected a map`, { field: path });
      for (const [k, v] of Object.entries(raw)) checkScalar(field.type, field.resolvedType, v, `${path}.${k}`);
      out[field.name] = raw;
    } else {
      for (const [i, item] of (field.repeated ? asArray(raw, path) : [raw]).entries()) {
        checkScalar(field.type, field.resolvedType, item, field.repeated ? `${path}[${i}]` : path);
      }
      out[field.name] = raw;
    }
  }
  return out;
}

function asArray(value: unknown, at: string): unknown[] {
  if (!Array.isArray(value)) throw new WsdError('INVALID_ARGUMENT', `${at}: expected a list`, { field: at });
  return value;
}

function checkScalar(type: string, resolved: protobuf.ReflectionObject | null, value: unknown, at: string): void {
  const fail = (expected: string) => {
    throw new WsdError('INVALID_ARGUMENT', `${at}: expected ${expected}, got ${JSON.stringify(value)}`, { field: at });
  };
  if (resolved instanceof protobuf.Enum) {
    const known = Object.entries(resolved.values);
    if (!known.some(([name, number]) => value === name || value === number)) fail(`one of ${known.map(([n]) => n).join(', ')}`);
  } else if (type === 'string') {
    if (typeof value !== 'string') fail('a string');
  } else if (type === 'bool') {
    if (typeof value !== 'boolean') fail('true or false');
  } else if (/int|fixed/.test(type)) {
    if (!(Number.isInteger(value) || (typeof value === 'string' && /^-?\d+$/.test(value)))) fail('an integer');
  }
}
