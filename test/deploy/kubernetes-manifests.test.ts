// deploy/kubernetes/ without a cluster: every object against the Kubernetes OpenAPI schemas (kubernetes-models),
// misspelt fields included; the references between the objects; the DaemonSet against the config it runs; and that
// config through the real `wsd config validate`, and through a real start, on the files the pod would see.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { parseDocument } from 'yaml';
import { WsdClient } from '../../core/api/client.js';
import { loadCliConfig } from '../../core/cli/load-cli-config.js';
import { stopTimeoutMs } from '../../core/cli/run-command.js';
import { packageRoot } from '../../core/config/package-root.js';
import { makeTestPki } from '../kit/certificates.js';
import { runWsd, startDaemonProcess } from '../kit/daemon-process.js';
import { tempDir } from '../kit/temp-dir.js';
import { crossReferenceProblems, materializeVolume, podConfigProblems, readManifests } from './kubernetes-checks.js';
import { schemaProblems, unknownFieldProblems, type KubernetesObject } from './kubernetes-schema.js';

const root = packageRoot();
const dir = path.join(root, 'deploy', 'kubernetes');
const manifests = readManifests(dir);
const objects = manifests.map((m) => m.object);
const copy = <T>(value: T): T => structuredClone(value);
const daemonSet = objects.find((o) => o.kind === 'DaemonSet') as unknown as IDaemonSet;
const configMount = daemonSet.spec!.template.spec!.containers[0]!.volumeMounts!.find((m) => m.name === 'config')!;
const configFile = path.posix.join(configMount.mountPath, 'wsd.yaml');

/** The operator's value for each placeholder of the Secrets (what `kubectl create secret` would hold). */
const operatorSecrets = (tls?: { cert: string; key: string; ca: string }) => (source: { kind: string; name: string; key: string }, value: string) => {
  if (source.kind !== 'Secret') return value;
  if (source.key === 'hmac-key') return randomBytes(32).toString('hex');
  if (tls && source.key === 'tls.crt') return readFileSync(tls.cert, 'utf8');
  if (tls && source.key === 'tls.key') return readFileSync(tls.key, 'utf8');
  if (tls && source.key === 'ca.crt') return readFileSync(tls.ca, 'utf8');
  return value;
};

/** The pod's /etc/wsd in a temp folder; returns the path of its wsd.yaml. */
function podConfigFolder(valueOf?: Parameters<typeof materializeVolume>[4]): string {
  const folder = tempDir('wsd-pod-config-');
  materializeVolume(objects, daemonSet, 'config', folder, valueOf);
  return path.join(folder, path.posix.relative(configMount.mountPath, configFile));
}

describe('Kubernetes manifests', () => {
  it('hold the objects the node agent needs', () => {
    assert.deepEqual(
      manifests.map((m) => `${m.file}: ${m.object.kind}/${m.object.metadata?.name}`),
      [
        'configmap.yaml: ConfigMap/wsd-config',
        'daemonset.yaml: DaemonSet/wsd',
        'namespace.yaml: Namespace/wsd-system',
        'secret-storage.yaml: Secret/wsd-storage',
        'secret-tls.yaml: Secret/wsd-tls',
        'service.yaml: Service/wsd',
        'serviceaccount.yaml: ServiceAccount/wsd',
      ],
    );
  });

  it('are valid against the Kubernetes OpenAPI schemas, with no field the schemas do not know', async () => {
    const unknown = unknownFieldProblems(objects);
    for (const [i, { file, object }] of manifests.entries()) {
      assert.deepEqual(await schemaProblems(object), [], `${file}: ${object.kind}`);
      assert.deepEqual(unknown[i], [], `${file}: ${object.kind}`);
    }
  });

  it('are refused by the same validators when broken', async () => {
    const wrongType = copy(daemonSet) as unknown as KubernetesObject & IDaemonSet;
    (wrongType.spec!.template.spec as { terminationGracePeriodSeconds: unknown }).terminationGracePeriodSeconds = '90';
    (wrongType.spec!.template.spec!.containers[0]!.ports![0]! as { protocol: string }).protocol = 'TPC';
    assert.deepEqual(await schemaProblems(wrongType), [
      '/spec/template/spec/containers/0/ports/0/protocol: must be equal to one of the allowed values (SCTP, TCP, UDP)',
      '/spec/template/spec/terminationGracePeriodSeconds: must be integer',
    ]);

    const misspelt = copy(daemonSet) as unknown as KubernetesObject & IDaemonSet;
    const mount = misspelt.spec!.template.spec!.containers[0]!.volumeMounts![0]! as unknown as Record<string, unknown>;
    mount.mountPropogation = mount.mountPropagation;
    delete mount.mountPropagation;
    (misspelt.spec!.template.metadata as Record<string, unknown>).annotation = {};
    assert.deepEqual(await schemaProblems(misspelt), [], 'the schemas alone let a misspelt field through');
    assert.deepEqual(unknownFieldProblems([misspelt])[0], [
      'spec.template.metadata.annotation: unknown field (not in IObjectMeta)',
      'spec.template.spec.containers[0].volumeMounts[0].mountPropogation: unknown field (not in IVolumeMount)',
    ]);

    const unknownKind = { apiVersion: 'apps/v1', kind: 'DaemonSett', metadata: { name: 'x' } };
    assert.deepEqual(await schemaProblems(unknownKind), ['no schema for apps/v1 DaemonSett in kubernetes-models']);
  });

  it('name only objects, keys and ports that exist', () => {
    assert.deepEqual(crossReferenceProblems(objects), []);

    const broken = copy(objects).filter((o) => o.kind !== 'ServiceAccount');
    const ds = broken.find((o) => o.kind === 'DaemonSet') as unknown as IDaemonSet;
    const pod = ds.spec!.template.spec!;
    const sources = pod.volumes!.find((v) => v.name === 'config')!.projected!.sources!;
    sources[0]!.configMap!.name = 'wsd-conf';
    sources[1]!.secret!.items![2]!.key = 'ca.pem';
    pod.containers[0]!.volumeMounts![0]!.name = 'state';
    pod.containers[0]!.securityContext = {};
    pod.containers[0]!.readinessProbe!.httpGet!.port = 'metrics';
    const service = broken.find((o) => o.kind === 'Service') as unknown as { spec: { ports: Array<{ targetPort: string }> } };
    service.spec.ports[0]!.targetPort = 'api';
    assert.deepEqual(crossReferenceProblems(broken), [
      'DaemonSet wsd: service account wsd is not defined',
      'DaemonSet wsd: volume config names ConfigMap wsd-conf, which is not defined',
      'DaemonSet wsd: volume config takes key ca.pem of Secret wsd-tls, which has tls.crt, tls.key, ca.crt',
      'DaemonSet wsd container wsd: mounts volume state, which the pod does not define',
      'DaemonSet wsd container wsd: Bidirectional mount propagation of state is allowed in privileged containers only',
      'DaemonSet wsd container wsd: readinessProbe uses port metrics, which the container does not declare',
      'Service wsd: port grpc targets api, which DaemonSet wsd does not declare',
    ]);

    const unselected = copy(objects);
    (unselected.find((o) => o.kind === 'Service') as unknown as { spec: { selector: Record<string, string> } }).spec.selector = { app: 'wsd' };
    assert.deepEqual(crossReferenceProblems(unselected), ['Service wsd: its selector matches no pod template']);
  });

  it('run the image of this version with its config mounted read-only as owner-only files', () => {
    const container = daemonSet.spec!.template.spec!.containers[0]!;
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    assert.match(container.image!, new RegExp(`:${version.replace(/\./g, '\\.')}$`), 'the image tag follows package.json');
    assert.equal(configMount.readOnly, true);
    // Read as YAML 1.1, as Kubernetes does: `0400` is octal, owner read only.
    assert.equal(daemonSet.spec!.template.spec!.volumes!.find((v) => v.name === 'config')!.projected!.defaultMode, 0o400);
    assert.equal(daemonSet.spec!.template.spec!.automountServiceAccountToken, false, 'wsd never calls the Kubernetes API');
  });

  it('list every manifest in kustomization.yaml but the Secrets, whose placeholders would overwrite real ones', () => {
    const kustomization = parseDocument(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')).toJS() as { resources: string[] };
    const expected = [...new Set(manifests.filter((m) => m.object.kind !== 'Secret').map((m) => m.file))];
    assert.deepEqual([...kustomization.resources].sort(), expected.sort());
  });
});

describe('the DaemonSet and its config', () => {
  it('fit together: --config path, probe and scrape ports, gRPC port, TLS, data folder, grace period, resources', async () => {
    const config = await loadCliConfig(podConfigFolder(operatorSecrets()));
    const options = { configFile, stopTimeoutMs };
    assert.deepEqual(podConfigProblems(daemonSet, config, options), []);
    const withStatusPage = { ...config, root: { ...config.root, http: { ...config.root.http, statusPage: true } } };
    assert.deepEqual(podConfigProblems(daemonSet, withStatusPage, options), [
      `config http.address ${config.root.http.address}: http.statusPage serves workspace owners and errors to anyone in the cluster; set statusPage: false`,
    ]);
    const grace = daemonSet.spec!.template.spec!.terminationGracePeriodSeconds!;
    assert.ok(grace * 1000 >= stopTimeoutMs + 10_000, `${grace} s leaves the daemon's ${stopTimeoutMs / 1000} s stop timeout at least 10 s to exit`);

    const broken = copy(daemonSet);
    const pod = broken.spec!.template.spec!;
    pod.terminationGracePeriodSeconds = stopTimeoutMs / 1000;
    pod.containers[0]!.ports!.find((p) => p.name === 'http')!.containerPort = 9090;
    pod.containers[0]!.volumeMounts!.find((m) => m.name === 'data')!.mountPropagation = 'HostToContainer';
    broken.spec!.template.metadata!.annotations!['prometheus.io/port'] = '9090';
    assert.deepEqual(podConfigProblems(broken, config, options), [
      'livenessProbe: probes port 9090, but the config serves /healthz on 9500',
      'readinessProbe: probes port 9090, but the config serves /readyz on 9500',
      'startupProbe: probes port 9090, but the config serves /healthz on 9500',
      'pod annotation prometheus.io/port is 9090, but /metrics is on 9500',
      'the data mount needs mountPropagation: Bidirectional for quota mounts, has HostToContainer',
      `terminationGracePeriodSeconds ${stopTimeoutMs / 1000} must be longer than wsd's stop timeout (${stopTimeoutMs / 1000} s)`,
    ]);
  });

  it('passes `wsd config validate` with the files the pod mounts beside it, and every file it names is mounted', async () => {
    const file = podConfigFolder(operatorSecrets());
    const result = await runWsd(['config', 'validate', '--config', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /: valid; plugins in start order: storage\/local, quota\/none, /);
    const { root: config } = await loadCliConfig(file);
    for (const tlsFile of [config.api.tls!.certFile, config.api.tls!.keyFile, config.api.tls!.caFile!]) {
      assert.ok(!path.isAbsolute(tlsFile), `${tlsFile}: relative to the config, so it names a file of the same volume`);
      assert.ok(statSync(path.resolve(path.dirname(file), tlsFile)).isFile(), `${tlsFile} is projected into the pod`);
    }
  });

  it('refuses to run while the storage Secret still holds its placeholder', async () => {
    const result = await runWsd(['config', 'validate', '--config', podConfigFolder()]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /- backup\.hmacKey: must be at least 32 characters/);
  });

  it('starts a daemon that serves mutual TLS from the projected files (addresses and data folder moved to a test node)', async () => {
    const pki = makeTestPki(tempDir('wsd-pod-pki-'));
    const file = podConfigFolder(operatorSecrets({ cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert }));
    // Only what must differ on a test machine: loopback addresses on free ports, and a temp data folder.
    const document = parseDocument(readFileSync(file, 'utf8'));
    document.setIn(['http', 'address'], '127.0.0.1:0');
    document.setIn(['api', 'address'], '127.0.0.1:0');
    document.setIn(['dataDir'], tempDir('wsd-pod-data-'));
    writeFileSync(file, document.toString());

    const daemon = await startDaemonProcess({ args: ['--config', file] });
    try {
      assert.deepEqual(
        daemon.logs.filter((l) => l.msg === 'grpc listening').map((l) => [l.tls, l.mutualTls]),
        [[true, true]],
      );
      const call = async (tls: ConstructorParameters<typeof WsdClient>[0]['tls']) => {
        const client = new WsdClient({ address: daemon.grpcAddress, tls, timeoutMs: 5000 });
        try {
          return await client.isWorkspaceExists('ws-1');
        } finally {
          client.close();
        }
      };
      // As a caller in a cluster does: connect to the pod's IP, verify the name the certificate carries.
      const server = { caFile: pki.caCert, serverName: 'localhost' };
      assert.equal(await call({ ...server, certFile: pki.clientCert, keyFile: pki.clientKey }), false);
      await assert.rejects(call(server), (e: ServiceError) => e.code === status.UNAVAILABLE);
      assert.equal((await fetch(`http://${daemon.httpAddress}/readyz`)).status, 200);
    } finally {
      assert.equal(await daemon.stop('SIGTERM'), 0);
    }
  });
});
