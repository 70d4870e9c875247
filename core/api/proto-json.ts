import protobuf from 'protobufjs';
import { WsdError } from '../errors.js';
import { protoDir } from './proto.js';

let root: protobuf.Root | undefined;

function loadRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => `${protoDir()}/${target}`;
    root.loadSync('content-service-api/initializer.proto', { keepCase: true });
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
