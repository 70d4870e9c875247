import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Server } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { protoDir } from './proto.js';

/**
 * Server reflection that generic clients (grpcurl, Go's `protodesc`, grpcui, Postman) can use: the served
 * `FileDescriptorProto`s are built here from the `.proto` files themselves, the way protoc would emit them — one per
 * source file under its import path, with the file's declared imports as dependencies, fully qualified type names
 * (`.pkg.Message`), reserved ranges and names, JSON names, `<Field>Entry` map entry messages and proto3 `optional`
 * as synthetic oneofs. (`@grpc/proto-loader`'s own descriptors, which @grpc/reflection serves by default, merge files
 * by package, use relative type names, declare no imports and misname map entries, so Go clients reject them.)
 */

/** A source file served through reflection: the import path it is known by, and where it is on disk. */
interface ProtoSource {
  name: string;
  file: string;
}

const require = createRequire(import.meta.url);

/** Every file whose services wsd serves, under its canonical import path. */
export function reflectedProtoSources(): ProtoSource[] {
  const wsd = (name: string): ProtoSource => ({ name, file: path.join(protoDir(), name) });
  const reflectionProtoDir = path.join(path.dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  return [
    wsd('content-service-api/initializer.proto'),
    wsd('wsdaemon/daemon.proto'),
    wsd('wsd/v1/admin.proto'),
    { name: 'grpc/health/v1/health.proto', file: healthProtoPath },
    { name: 'grpc/reflection/v1/reflection.proto', file: path.join(reflectionProtoDir, 'grpc/reflection/v1/reflection.proto') },
    { name: 'grpc/reflection/v1alpha/reflection.proto', file: path.join(reflectionProtoDir, 'grpc/reflection/v1alpha/reflection.proto') },
  ];
}

/** Plain-object `google.protobuf.FileDescriptorProto` (protobufjs `fromObject` shape: camelCase keys, enum names). */
export type FileDescriptorObject = Record<string, unknown> & { name: string; package?: string; dependency: string[] };

let cached: { files: FileDescriptorObject[]; encoded: Uint8Array[] } | undefined;

/** The descriptors of `reflectedProtoSources()`, dependencies first, as objects and as encoded protos. Built once. */
export function reflectionDescriptors(): { files: FileDescriptorObject[]; encoded: Uint8Array[] } {
  if (!cached) {
    const files = buildFileDescriptors(reflectedProtoSources());
    const encoded = files.map((file) => {
      const message = descriptor.FileDescriptorProto.fromObject(file);
      const problem = descriptor.FileDescriptorProto.verify(message);
      if (problem) throw new Error(`reflection descriptor for ${file.name}: ${problem}`);
      return descriptor.FileDescriptorProto.encode(message).finish();
    });
    cached = { files, encoded };
  }
  return cached;
}

/**
 * A package definition in @grpc/proto-loader's shape (one entry per top-level message and enum, each carrying the
 * encoded files) but made of the descriptors above: what @grpc/reflection indexes and serves.
 */
export function reflectionPackageDefinition(): PackageDefinition {
  const { files, encoded } = reflectionDescriptors();
  const fileDescriptorProtos = encoded.map((bytes) => Buffer.from(bytes));
  const definition: Record<string, unknown> = {};
  for (const file of files) {
    const prefix = file.package ? `${file.package}.` : '';
    for (const type of (file.messageType as Array<{ name: string }> | undefined) ?? []) {
      definition[prefix + type.name] = { format: 'Protocol Buffer 3 DescriptorProto', type, fileDescriptorProtos };
    }
    for (const type of (file.enumType as Array<{ name: string }> | undefined) ?? []) {
      definition[prefix + type.name] = { format: 'Protocol Buffer 3 EnumDescriptorProto', type, fileDescriptorProtos };
    }
  }
  return definition as PackageDefinition;
}

/** Adds `grpc.reflection.v1.ServerReflection` and `grpc.reflection.v1alpha.ServerReflection`, answering from the descriptors above. */
export function addReflectionToServer(server: Server): void {
  new ReflectionService(reflectionPackageDefinition()).addToServer(server);
}

// --- building the descriptors ---------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

/** Parses the sources into one protobufjs root (to resolve names across imports) and describes each file on its own. */
export function buildFileDescriptors(sources: ProtoSource[]): FileDescriptorObject[] {
  const byPath = new Map(sources.map((source) => [path.resolve(source.file), source]));
  const byName = new Map(sources.map((source) => [source.name, source]));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    const known = byName.get(target) ?? byPath.get(path.resolve(target));
    if (!known) throw new Error(`reflection: import "${target}" is not one of the reflected files`);
    return path.resolve(known.file);
  };
  root.loadSync(sources.map((source) => source.name), { keepCase: true });
  root.resolveAll();

  return sources.map((source) => {
    const text = readFileSync(source.file, 'utf8');
    const syntax = /^\s*syntax\s*=\s*["']([^"']+)["']\s*;/m.exec(text)?.[1];
    if (syntax !== 'proto3') throw new Error(`reflection: ${source.name}: only proto3 files are supported (syntax ${syntax ?? 'missing'})`);
    // A file parsed alone gives its own imports and file-level options (in a shared root, files of one package share a namespace).
    const alone = protobuf.parse(text, new protobuf.Root(), { keepCase: true });
    if (alone.weakImports?.length) throw new Error(`reflection: ${source.name}: weak imports are not supported`);
    const pkg = alone.package ?? '';
    const fileNamespace = pkg ? alone.root.lookup(pkg) : alone.root;
    const file = path.resolve(source.file);
    const deps = new Set((alone.imports ?? []).map((target) => byName.get(target)?.file).filter(Boolean).map((f) => path.resolve(f!)));
    for (const target of alone.imports ?? []) if (!byName.has(target)) throw new Error(`reflection: ${source.name} imports "${target}", which is not reflected`);

    const checkReference = (type: protobuf.ReflectionObject | null, where: string): string => {
      if (!type) throw new Error(`reflection: ${source.name}: unresolved type at ${where}`);
      const from = type.filename ? path.resolve(type.filename) : '';
      if (from !== file && !deps.has(from)) throw new Error(`reflection: ${source.name}: ${where} uses ${type.fullName} from ${type.filename}, which the file does not import`);
      return type.fullName; // ".pkg.Name": fully qualified
    };

    const messages: Obj[] = [];
    const enums: Obj[] = [];
    const services: Obj[] = [];
    const packageNamespace = pkg ? root.lookup(pkg) : root;
    if (!(packageNamespace instanceof protobuf.Namespace)) throw new Error(`reflection: ${source.name}: package ${pkg} not found`);
    for (const nested of packageNamespace.nestedArray) {
      if (!nested.filename || path.resolve(nested.filename) !== file) continue;
      if (nested instanceof protobuf.Type) messages.push(describeMessage(nested, checkReference));
      else if (nested instanceof protobuf.Enum) enums.push(describeEnum(nested));
      else if (nested instanceof protobuf.Service) services.push(describeService(nested, checkReference));
      else if (nested instanceof protobuf.Field) throw new Error(`reflection: ${source.name}: extensions are not supported`);
    }
    return {
      name: source.name,
      ...(pkg ? { package: pkg } : {}),
      dependency: alone.imports ?? [],
      messageType: messages,
      enumType: enums,
      service: services,
      ...options(fileNamespace?.options, descriptor.FileOptions, source.name),
      syntax: 'proto3',
    };
  });
}

type Resolve = (type: protobuf.ReflectionObject | null, where: string) => string;

const scalarTypes: Record<string, string> = {
  double: 'TYPE_DOUBLE', float: 'TYPE_FLOAT', int64: 'TYPE_INT64', uint64: 'TYPE_UINT64', int32: 'TYPE_INT32', fixed64: 'TYPE_FIXED64',
  fixed32: 'TYPE_FIXED32', bool: 'TYPE_BOOL', string: 'TYPE_STRING', bytes: 'TYPE_BYTES', uint32: 'TYPE_UINT32', sfixed32: 'TYPE_SFIXED32',
  sfixed64: 'TYPE_SFIXED64', sint32: 'TYPE_SINT32', sint64: 'TYPE_SINT64',
};

/** The `type` / `type_name` of a field (or map key/value) of `typeName`, resolved to `resolved` for message and enum types. */
function fieldType(typeName: string, resolved: protobuf.ReflectionObject | null, resolve: Resolve, where: string): Obj {
  if (resolved instanceof protobuf.Type) return { type: 'TYPE_MESSAGE', typeName: resolve(resolved, where) };
  if (resolved instanceof protobuf.Enum) return { type: 'TYPE_ENUM', typeName: resolve(resolved, where) };
  const scalar = scalarTypes[typeName];
  if (!scalar) throw new Error(`reflection: unresolved type ${typeName} at ${where}`);
  return { type: scalar };
}

/** protoc's `ToJsonName`: drop underscores, upper-case the letter after each. */
export function jsonName(name: string): string {
  return name.replace(/_+(.?)/g, (_match, next: string) => next.toUpperCase());
}

/** protoc's `MapEntryName`: `custom_config` -> `CustomConfigEntry`. */
export function mapEntryName(fieldName: string): string {
  return `${fieldName.replace(/(?:^|_+)([a-z]?)/g, (_match, next: string) => next.toUpperCase())}Entry`;
}

function describeMessage(type: protobuf.Type, resolve: Resolve): Obj {
  const where = type.fullName.slice(1);
  // protoc puts real oneofs first, then the synthetic ones of proto3 `optional` fields, in field order.
  const isSynthetic = (oneof: protobuf.OneOf) => oneof.fieldsArray.length === 1 && Boolean(oneof.fieldsArray[0]!.options?.proto3_optional);
  const oneofs = [...type.oneofsArray.filter((o) => !isSynthetic(o)), ...type.oneofsArray.filter(isSynthetic)];
  const fields: Obj[] = [];
  const nestedTypes: Obj[] = [];
  const enums: Obj[] = [];
  for (const field of type.fieldsArray) {
    const at = `${where}.${field.name}`;
    const fieldOptions = { ...(field.options ?? {}) };
    // Not options in the descriptor: `[json_name = ...]` is a field of its own, proto3 `optional` a flag.
    const base: Obj = { name: field.name, number: field.id, jsonName: typeof fieldOptions.json_name === 'string' ? fieldOptions.json_name : jsonName(field.name) };
    const proto3Optional = Boolean(fieldOptions.proto3_optional);
    delete fieldOptions.json_name;
    delete fieldOptions.proto3_optional;
    if (field.required) throw new Error(`reflection: ${at}: required fields are not proto3`);
    if (field instanceof protobuf.MapField) {
      const entryName = mapEntryName(field.name);
      nestedTypes.push({
        name: entryName,
        field: [
          { name: 'key', number: 1, label: 'LABEL_OPTIONAL', jsonName: 'key', ...fieldType(field.keyType, null, resolve, `${at} (key)`) },
          { name: 'value', number: 2, label: 'LABEL_OPTIONAL', jsonName: 'value', ...fieldType(field.type, field.resolvedType, resolve, `${at} (value)`) },
        ],
        options: { mapEntry: true },
      });
      fields.push({ ...base, label: 'LABEL_REPEATED', type: 'TYPE_MESSAGE', typeName: `${type.fullName}.${entryName}`, ...options(fieldOptions, descriptor.FieldOptions, at) });
      continue;
    }
    const described: Obj = { ...base, label: field.repeated ? 'LABEL_REPEATED' : 'LABEL_OPTIONAL', ...fieldType(field.type, field.resolvedType, resolve, at) };
    if (field.partOf) described.oneofIndex = oneofs.indexOf(field.partOf);
    if (proto3Optional) described.proto3Optional = true;
    fields.push({ ...described, ...options(fieldOptions, descriptor.FieldOptions, at) });
  }
  for (const nested of type.nestedArray) {
    if (nested instanceof protobuf.Type) nestedTypes.push(describeMessage(nested, resolve));
    else if (nested instanceof protobuf.Enum) enums.push(describeEnum(nested));
    else throw new Error(`reflection: ${where}: nested ${nested.constructor.name} ${nested.name} is not supported`);
  }
  const reservedRange: Obj[] = [];
  const reservedName: string[] = [];
  for (const reserved of type.reserved ?? []) {
    if (typeof reserved === 'string') reservedName.push(reserved);
    else reservedRange.push({ start: reserved[0], end: reserved[1]! + 1 }); // protobufjs: inclusive; descriptor: exclusive end
  }
  return {
    name: type.name,
    field: fields,
    nestedType: nestedTypes,
    enumType: enums,
    oneofDecl: oneofs.map((oneof) => ({ name: oneof.name, ...options(oneof.options, descriptor.OneofOptions, `${where}.${oneof.name}`) })),
    reservedRange,
    reservedName,
    ...options(type.options, descriptor.MessageOptions, where),
  };
}

function describeEnum(enm: protobuf.Enum): Obj {
  const where = enm.fullName.slice(1);
  const reservedRange: Obj[] = [];
  const reservedName: string[] = [];
  for (const reserved of enm.reserved ?? []) {
    if (typeof reserved === 'string') reservedName.push(reserved);
    else reservedRange.push({ start: reserved[0], end: reserved[1] }); // enum reserved ranges are inclusive
  }
  return {
    name: enm.name,
    value: Object.entries(enm.values).map(([name, number]) => ({ name, number, ...options(enm.valuesOptions?.[name] ?? undefined, descriptor.EnumValueOptions, `${where}.${name}`) })),
    reservedRange,
    reservedName,
    ...options(enm.options, descriptor.EnumOptions, where),
  };
}

function describeService(service: protobuf.Service, resolve: Resolve): Obj {
  const where = service.fullName.slice(1);
  return {
    name: service.name,
    method: service.methodsArray.map((method) => {
      method.resolve();
      const at = `${where}.${method.name}`;
      return {
        name: method.name,
        inputType: resolve(method.resolvedRequestType, `${at} (request)`),
        outputType: resolve(method.resolvedResponseType, `${at} (response)`),
        ...(method.requestStream ? { clientStreaming: true } : {}),
        ...(method.responseStream ? { serverStreaming: true } : {}),
        ...options(method.options, descriptor.MethodOptions, at),
      };
    }),
    ...options(service.options, descriptor.ServiceOptions, where),
  };
}

/** Standard options (`go_package`, `deprecated`, ...) as `{ options: {...} }` for `*Options`, or nothing. Custom options are refused. */
function options(values: Record<string, unknown> | undefined, type: protobuf.Type, where: string): { options?: Obj } {
  if (!values) return {};
  const out: Obj = {};
  for (const [key, value] of Object.entries(values)) {
    const camel = key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    if (!type.fields[camel]) throw new Error(`reflection: ${where}: option ${key} is not a standard ${type.name} option and cannot be described`);
    out[camel] = value;
  }
  return Object.keys(out).length ? { options: out } : {};
}
