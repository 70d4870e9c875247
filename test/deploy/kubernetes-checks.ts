import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IService } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import type { WsdConfig } from '../../core/config/load-config.js';
import { isLoopback } from '../../core/config/root-schema.js';
import type { KubernetesObject } from './kubernetes-schema.js';

export interface Manifest {
  file: string;
  object: KubernetesObject;
}

/**
 * Every object of every `*.yaml` in `dir` but kustomization.yaml. Read as YAML 1.1, as Kubernetes reads manifests:
 * `0400` is octal there (a file mode), and 256, not 400, is what the kubelet gets.
 */
export function readManifests(dir: string): Manifest[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'), { version: '1.1' }).flatMap((document) => {
        if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
        const object = document.toJS() as KubernetesObject | null;
        return object === null ? [] : [{ file, object }];
      }),
    );
}

const key = (kind: string, namespace: string | undefined, name: string | undefined) => `${kind}/${namespace ?? ''}/${name ?? ''}`;
const clusterScoped = new Set(['Namespace', 'PriorityClass', 'ClusterRole', 'ClusterRoleBinding']);
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** The keys of a ConfigMap or Secret, whichever field holds them. */
function dataKeys(object: KubernetesObject): Set<string> {
  const { data, stringData, binaryData } = object as { data?: object; stringData?: object; binaryData?: object };
  return new Set([data, stringData, binaryData].flatMap((field) => Object.keys(field ?? {})));
}

/** The container port a probe or Service names, by name or number. */
function containerPort(containers: readonly IContainer[], port: number | string | undefined) {
  return containers.flatMap((c) => c.ports ?? []).find((p) => p.name === port || p.containerPort === port);
}

/**
 * What the API server cannot check for us: every name one object uses for another exists (namespace, service
 * account, ConfigMap, Secret and the keys taken from them, volumes, ports), selectors select, and the rule the
 * OpenAPI schema does not express — Bidirectional mount propagation only in privileged containers.
 */
export function crossReferenceProblems(objects: readonly KubernetesObject[]): string[] {
  const problems: string[] = [];
  const index = new Map(objects.map((o) => [key(o.kind, clusterScoped.has(o.kind) ? undefined : o.metadata?.namespace, o.metadata?.name), o]));
  const find = (kind: string, namespace: string | undefined, name: string | undefined) => index.get(key(kind, namespace, name));

  for (const object of objects) {
    const name = `${object.kind} ${object.metadata?.name}`;
    if (clusterScoped.has(object.kind)) continue;
    if (!object.metadata?.namespace) problems.push(`${name}: no namespace`);
    else if (!find('Namespace', undefined, object.metadata.namespace)) problems.push(`${name}: namespace ${object.metadata.namespace} is not defined`);
  }

  const daemonSets = objects.filter((o) => o.kind === 'DaemonSet') as unknown as IDaemonSet[];
  for (const ds of daemonSets) {
    const namespace = ds.metadata?.namespace;
    const at = `DaemonSet ${ds.metadata?.name}`;
    const pod = ds.spec?.template.spec as IPodSpec;
    const podLabels = ds.spec?.template.metadata?.labels;
    if (!matches(ds.spec?.selector.matchLabels, podLabels)) problems.push(`${at}: spec.selector does not select the pod template's labels`);
    if (pod.serviceAccountName && !find('ServiceAccount', namespace, pod.serviceAccountName)) problems.push(`${at}: service account ${pod.serviceAccountName} is not defined`);

    const sourceProblems = (kind: 'ConfigMap' | 'Secret', sourceName: string | undefined, items: Array<{ key: string }> | undefined, where: string) => {
      const source = find(kind, namespace, sourceName);
      if (!source) return problems.push(`${at}: ${where} names ${kind} ${sourceName}, which is not defined`);
      const keys = dataKeys(source);
      for (const item of items ?? []) if (!keys.has(item.key)) problems.push(`${at}: ${where} takes key ${item.key} of ${kind} ${sourceName}, which has ${[...keys].join(', ')}`);
      return undefined;
    };
    for (const volume of pod.volumes ?? []) {
      const where = `volume ${volume.name}`;
      if (volume.configMap) sourceProblems('ConfigMap', volume.configMap.name, volume.configMap.items, where);
      if (volume.secret) sourceProblems('Secret', volume.secret.secretName, volume.secret.items, where);
      for (const source of volume.projected?.sources ?? []) {
        if (source.configMap) sourceProblems('ConfigMap', source.configMap.name, source.configMap.items, where);
        if (source.secret) sourceProblems('Secret', source.secret.name, source.secret.items, where);
      }
    }
    for (const container of pod.containers) {
      const cat = `${at} container ${container.name}`;
      for (const mount of container.volumeMounts ?? []) {
        if (!pod.volumes?.some((v) => v.name === mount.name)) problems.push(`${cat}: mounts volume ${mount.name}, which the pod does not define`);
        if (mount.mountPropagation === 'Bidirectional' && container.securityContext?.privileged !== true) {
          problems.push(`${cat}: Bidirectional mount propagation of ${mount.name} is allowed in privileged containers only`);
        }
      }
      for (const [probeName, probe] of [['livenessProbe', container.livenessProbe], ['readinessProbe', container.readinessProbe], ['startupProbe', container.startupProbe]] as const) {
        const port = probe?.httpGet?.port;
        if (port !== undefined && !containerPort([container], port)) problems.push(`${cat}: ${probeName} uses port ${port}, which the container does not declare`);
      }
    }
  }

  for (const service of objects.filter((o) => o.kind === 'Service') as unknown as IService[]) {
    const at = `Service ${service.metadata?.name}`;
    const selected = daemonSets.filter((ds) => ds.metadata?.namespace === service.metadata?.namespace && matches(service.spec?.selector, ds.spec?.template.metadata?.labels));
    if (selected.length === 0) {
      problems.push(`${at}: its selector matches no pod template`);
      continue;
    }
    for (const port of service.spec?.ports ?? []) {
      for (const ds of selected) {
        if (!containerPort(ds.spec!.template.spec!.containers, port.targetPort ?? port.port)) problems.push(`${at}: port ${port.name} targets ${port.targetPort ?? port.port}, which DaemonSet ${ds.metadata?.name} does not declare`);
      }
    }
  }
  return problems;
}

/**
 * Writes the files a projected (or ConfigMap, or Secret) volume of the DaemonSet shows the container, into `dir`,
 * as the kubelet would. `valueOf` may stand in for a value (the operator's real secret in place of a placeholder).
 */
export function materializeVolume(
  objects: readonly KubernetesObject[],
  daemonSet: IDaemonSet,
  volumeName: string,
  dir: string,
  valueOf: (source: { kind: string; name: string; key: string }, value: string) => string = (_, value) => value,
): void {
  const namespace = daemonSet.metadata?.namespace;
  const volume = daemonSet.spec?.template.spec?.volumes?.find((v) => v.name === volumeName);
  if (!volume) throw new Error(`DaemonSet has no volume ${volumeName}`);
  const sources = [
    ...(volume.configMap ? [{ kind: 'ConfigMap', name: volume.configMap.name!, items: volume.configMap.items }] : []),
    ...(volume.secret ? [{ kind: 'Secret', name: volume.secret.secretName!, items: volume.secret.items }] : []),
    ...(volume.projected?.sources ?? []).flatMap((s) => [
      ...(s.configMap ? [{ kind: 'ConfigMap', name: s.configMap.name!, items: s.configMap.items }] : []),
      ...(s.secret ? [{ kind: 'Secret', name: s.secret.name!, items: s.secret.items }] : []),
    ]),
  ];
  for (const source of sources) {
    const object = objects.find((o) => o.kind === source.kind && o.metadata?.namespace === namespace && o.metadata?.name === source.name) as { data?: Record<string, string>; stringData?: Record<string, string> } | undefined;
    if (!object) throw new Error(`${source.kind} ${source.name} is not defined`);
    const value = (k: string) => object.stringData?.[k] ?? (source.kind === 'Secret' && object.data?.[k] !== undefined ? Buffer.from(object.data[k]!, 'base64').toString('utf8') : object.data?.[k]);
    const items = source.items ?? [...dataKeys(object as KubernetesObject)].map((k) => ({ key: k, path: k }));
    for (const item of items) {
      const content = value(item.key);
      if (content === undefined) throw new Error(`${source.kind} ${source.name} has no key ${item.key}`);
      const file = path.join(dir, item.path);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, valueOf({ kind: source.kind, name: source.name, key: item.key }, content));
    }
  }
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/**
 * The DaemonSet fits the config it runs: the --config path is where the ConfigMap lands, probes and scrape
 * annotations use the HTTP port, the gRPC port is the API's, both listen beyond loopback (with TLS for the API),
 * the data folder is the hostPath volume at the node's own path with Bidirectional propagation, and the grace
 * period outlasts the daemon's own stop timeout.
 */
export function podConfigProblems(daemonSet: IDaemonSet, config: WsdConfig, options: { configFile: string; stopTimeoutMs: number }): string[] {
  const problems: string[] = [];
  const pod = daemonSet.spec!.template.spec!;
  const container = pod.containers[0]!;
  const { http, api } = config.root;

  const args = container.args ?? [];
  const configArg = args[args.indexOf('--config') + 1];
  if (args.indexOf('--config') < 0 || configArg !== options.configFile) problems.push(`args: run --config ${options.configFile} expected, got ${args.join(' ')}`);

  if (isLoopback(http.address)) problems.push(`config http.address ${http.address}: the kubelet's probes cannot reach a loopback address`);
  // The status page shows workspace ids, owners and error texts without any login: not on an address the cluster reaches.
  if (!isLoopback(http.address) && http.statusPage) problems.push(`config http.address ${http.address}: http.statusPage serves workspace owners and errors to anyone in the cluster; set statusPage: false`);
  if (isLoopback(api.address)) problems.push(`config api.address ${api.address}: unreachable from outside the pod`);
  if (!api.tls?.caFile || api.insecure) problems.push('config api: mutual TLS (tls with caFile) expected beyond loopback');

  const httpPort = portOf(http.address);
  const expectProbe = (name: string, probe: IProbe | undefined, route: string) => {
    const port = containerPort([container], probe?.httpGet?.port);
    if (probe?.httpGet?.path !== route) problems.push(`${name}: httpGet ${route} expected, got ${probe?.httpGet?.path}`);
    if (port?.containerPort !== httpPort) problems.push(`${name}: probes port ${port?.containerPort}, but the config serves ${route} on ${httpPort}`);
  };
  expectProbe('livenessProbe', container.livenessProbe, '/healthz');
  expectProbe('readinessProbe', container.readinessProbe, '/readyz');
  if (container.startupProbe) expectProbe('startupProbe', container.startupProbe, '/healthz');

  const grpc = container.ports?.find((p) => p.name === 'grpc');
  if (grpc?.containerPort !== portOf(api.address)) problems.push(`container port grpc is ${grpc?.containerPort}, but the config's api.address is ${api.address}`);

  const annotations = daemonSet.spec!.template.metadata?.annotations ?? {};
  if (annotations['prometheus.io/scrape'] !== 'true') problems.push('pod annotation prometheus.io/scrape: "true" expected');
  if (annotations['prometheus.io/port'] !== String(httpPort)) problems.push(`pod annotation prometheus.io/port is ${annotations['prometheus.io/port']}, but /metrics is on ${httpPort}`);
  if (annotations['prometheus.io/path'] !== '/metrics') problems.push('pod annotation prometheus.io/path: /metrics expected');

  const dataMount = container.volumeMounts?.find((m) => m.mountPath === config.paths.dataDir);
  const dataVolume = pod.volumes?.find((v) => v.name === dataMount?.name);
  if (!dataMount || !dataVolume?.hostPath) problems.push(`no hostPath volume mounted at the config's dataDir ${config.paths.dataDir}`);
  else {
    if (dataVolume.hostPath.path !== dataMount.mountPath) problems.push(`hostPath ${dataVolume.hostPath.path} is mounted at ${dataMount.mountPath}: paths in state and mounts would differ between node and container`);
    if (dataMount.mountPropagation !== 'Bidirectional') problems.push(`the data mount needs mountPropagation: Bidirectional for quota mounts, has ${dataMount.mountPropagation}`);
  }

  if (pod.priorityClassName !== 'system-node-critical') problems.push(`priorityClassName system-node-critical expected, got ${pod.priorityClassName}`);
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  if (grace * 1000 <= options.stopTimeoutMs) problems.push(`terminationGracePeriodSeconds ${grace} must be longer than wsd's stop timeout (${options.stopTimeoutMs / 1000} s)`);
  const { requests, limits } = container.resources ?? {};
  if (!requests?.cpu || !requests.memory || !limits?.memory) problems.push('resources: cpu and memory requests and a memory limit expected');
  return problems;
}
