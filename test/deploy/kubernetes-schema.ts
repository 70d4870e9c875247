import path from 'node:path';
import ts from 'typescript';
import { packageRoot } from '../../core/config/package-root.js';

/** A Kubernetes object as a manifest holds it. */
export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** kubernetes-models keeps one module per kind: `apps/v1` + `DaemonSet` → `kubernetes-models/apps/v1/DaemonSet`. */
function modelModule(object: KubernetesObject): string | undefined {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || !/^([a-z0-9.-]+\/)?v\d+((alpha|beta)\d+)?$/.test(apiVersion)) return undefined;
  if (typeof kind !== 'string' || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/**
 * Problems of one object against the Kubernetes OpenAPI schema of its apiVersion and kind, as shipped by
 * kubernetes-models (types, required fields, enums, formats): `/spec/ports/0/port: must be integer`.
 */
export async function schemaProblems(object: KubernetesObject): Promise<string[]> {
  const specifier = modelModule(object);
  const model = specifier ? ((await import(specifier).catch(() => undefined)) as Record<string, unknown> | undefined)?.[object.kind] : undefined;
  if (typeof model !== 'function') return [`no schema for ${object.apiVersion} ${object.kind} in kubernetes-models`];
  try {
    (new (model as new (data: unknown) => { validate(): void })(object)).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }> }).errors;
    if (!errors) throw error;
    return errors.map((e) => `${e.instancePath || '/'}: ${e.message}${e.params?.allowedValues ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`);
  }
}

/**
 * Fields the schema does not know. The schemas of kubernetes-models, like the OpenAPI ones, leave
 * additionalProperties open, so a misspelt field (`mountPropogation`) passes them while the API server refuses it
 * (kubectl's strict field validation) or drops it silently. The package's TypeScript declarations list every field,
 * so each object is walked against the type of its kind, as the TypeScript checker sees it. One program for all
 * objects: building it costs about a second.
 */
export function unknownFieldProblems(objects: readonly KubernetesObject[]): string[][] {
  const root = packageRoot();
  const file = path.join(root, '__kubernetes_manifest_types__.ts');
  const source = objects
    .map((object, i) => {
      const module = modelModule(object);
      return module ? `export type T${i} = import('${module}').I${object.kind};` : `export type T${i} = never;`;
    })
    .join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const checker = program.getTypeChecker();
  const aliases = program.getSourceFile(file)!.statements.filter(ts.isTypeAliasDeclaration);

  return objects.map((object, i) => {
    const type = checker.getTypeAtLocation(aliases[i]!.name);
    if (type.flags & ts.TypeFlags.Never || type.flags & ts.TypeFlags.Any) return [`no declared type for ${object.apiVersion} ${object.kind} in kubernetes-models`];
    const problems: string[] = [];
    walk(checker, type, object, '', problems);
    return problems;
  });
}

function walk(checker: ts.TypeChecker, declared: ts.Type, value: unknown, at: string, problems: string[]): void {
  if (value === null || typeof value !== 'object') return;
  let type = checker.getNonNullableType(declared);
  if (type.isUnion()) {
    const objectTypes = type.types.filter((member) => member.flags & ts.TypeFlags.Object);
    if (objectTypes.length !== 1) return;
    type = objectTypes[0]!;
  }
  if (!(type.flags & ts.TypeFlags.Object)) return; // a value of the wrong type: the schema check reports it
  if (Array.isArray(value)) {
    if (!checker.isArrayType(type)) return;
    const element = checker.getTypeArguments(type as ts.TypeReference)[0];
    if (element) value.forEach((item, i) => walk(checker, element, item, `${at}[${i}]`, problems));
    return;
  }
  const stringIndex = checker.getIndexInfosOfType(type).find((info) => info.keyType.flags & ts.TypeFlags.String);
  for (const [key, child] of Object.entries(value)) {
    const childAt = at ? `${at}.${key}` : key;
    const property = checker.getPropertyOfType(type, key);
    if (property) walk(checker, checker.getTypeOfSymbol(property), child, childAt, problems);
    else if (stringIndex) walk(checker, stringIndex.type, child, childAt, problems);
    else problems.push(`${childAt}: unknown field (not in ${checker.typeToString(type)})`);
  }
}
