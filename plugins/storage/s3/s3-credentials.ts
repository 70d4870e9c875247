import { readFile } from 'node:fs/promises';
import { IamAwsProvider } from 'minio/dist/esm/IamAwsProvider.mjs';
import { CredentialProvider } from 'minio/dist/esm/CredentialProvider.mjs';
import { Credentials } from 'minio/dist/esm/Credentials.mjs';
import { WsdError, errnoCode, isWsdError } from '../../../core/plugin-api.js';
import type { S3Credentials } from './s3-config.js';

/**
 * The credential sources of storage/s3, as minio `CredentialProvider`s: the client asks its provider before every
 * request, so a provider may refresh (files re-read, temporary credentials renewed before they expire). Failures are
 * `WsdError`s that name the source and never carry a key.
 */
export function credentialProvider(credentials: S3Credentials, env: NodeJS.ProcessEnv = process.env): CredentialProvider {
  switch (credentials.source) {
    case 'files':
      return new FileCredentialProvider(credentials);
    case 'env':
      return envProvider(env, 'credentials.source env');
    case 'iam':
      return iamProvider(env, credentials.imdsEndpoint);
    case 'auto':
      return env.AWS_ACCESS_KEY_ID ? envProvider(env, 'credentials.source auto (AWS_ACCESS_KEY_ID is set)') : iamProvider(env, undefined);
  }
}

/** How long credentials read from files are used before the files are read again (secret rotation). */
const fileRefreshMs = 60_000;

class FileCredentialProvider extends CredentialProvider {
  readonly #files: { accessKeyIdFile: string; secretAccessKeyFile: string; sessionTokenFile?: string | undefined };
  #cached: { at: number; credentials: Credentials } | undefined;

  constructor(files: { accessKeyIdFile: string; secretAccessKeyFile: string; sessionTokenFile?: string | undefined }) {
    super({ accessKey: '', secretKey: '' });
    this.#files = files;
  }

  override async getCredentials(): Promise<Credentials> {
    if (this.#cached && Date.now() - this.#cached.at < fileRefreshMs) return this.#cached.credentials;
    const { accessKeyIdFile, secretAccessKeyFile, sessionTokenFile } = this.#files;
    const [accessKey, secretKey, sessionToken] = await Promise.all([
      readSecretFile(accessKeyIdFile, 'credentials.accessKeyIdFile'),
      readSecretFile(secretAccessKeyFile, 'credentials.secretAccessKeyFile'),
      sessionTokenFile === undefined ? undefined : readSecretFile(sessionTokenFile, 'credentials.sessionTokenFile'),
    ]);
    const credentials = new Credentials({ accessKey, secretKey, ...(sessionToken ? { sessionToken } : {}) });
    this.#cached = { at: Date.now(), credentials };
    return credentials;
  }
}

async function readSecretFile(file: string, setting: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new WsdError('FAILED_PRECONDITION', `storage/s3: ${setting} ${file} cannot be read (${errnoCode(error) ?? (error as Error).message})`, { field: setting });
  }
  // Secret files often end in a newline (echo, kubectl create secret --from-file); keys never contain whitespace.
  const value = text.trim();
  if (value === '') throw new WsdError('FAILED_PRECONDITION', `storage/s3: ${setting} ${file} is empty`, { field: setting });
  return value;
}

function envProvider(env: NodeJS.ProcessEnv, source: string): CredentialProvider {
  const accessKey = env.AWS_ACCESS_KEY_ID;
  const secretKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKey || !secretKey) {
    const missing = [!accessKey && 'AWS_ACCESS_KEY_ID', !secretKey && 'AWS_SECRET_ACCESS_KEY'].filter(Boolean).join(' and ');
    return new FailingCredentialProvider(new WsdError('FAILED_PRECONDITION', `storage/s3: ${source}: ${missing} not set in the environment`, { field: 'credentials' }));
  }
  return new CredentialProvider({ accessKey, secretKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) });
}

/** Reports a configuration problem on first use, i.e. from the backend's start(), not from the plugin's create. */
class FailingCredentialProvider extends CredentialProvider {
  readonly #error: WsdError;
  constructor(error: WsdError) {
    super({ accessKey: '', secretKey: '' });
    this.#error = error;
  }
  override async getCredentials(): Promise<Credentials> {
    throw this.#error;
  }
}

function iamProvider(env: NodeJS.ProcessEnv, imdsEndpoint: string | undefined): CredentialProvider {
  // IRSA (a web identity token exchanged at STS) is minio's IamAwsProvider. Its instance-metadata and container paths
  // read `AccessKeyID`, but IMDS and ECS answer `AccessKeyId` (minio 8.0.7), so those two are done here.
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return new IamAwsProvider({});
  return new InstanceCredentialProvider(env, imdsEndpoint ?? 'http://169.254.169.254');
}

/** Temporary credentials are renewed this long before they expire. */
const renewBeforeMs = 5 * 60_000;
const metadataTimeoutMs = 5_000;

/** EC2 instance role through IMDSv2, or an ECS task role through the container credentials endpoint. */
class InstanceCredentialProvider extends CredentialProvider {
  readonly #env: NodeJS.ProcessEnv;
  readonly #imds: string;
  #cached: { expiresAt: number; credentials: Credentials } | undefined;
  #pending: Promise<Credentials> | undefined;

  constructor(env: NodeJS.ProcessEnv, imdsEndpoint: string) {
    super({ accessKey: '', secretKey: '' });
    this.#env = env;
    this.#imds = imdsEndpoint;
  }

  override async getCredentials(): Promise<Credentials> {
    if (this.#cached && Date.now() < this.#cached.expiresAt - renewBeforeMs) return this.#cached.credentials;
    // Parts uploaded in parallel all ask at once: one fetch for all of them.
    this.#pending ??= this.#fetch().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #fetch(): Promise<Credentials> {
    let url: string;
    const headers: Record<string, string> = {};
    const env = this.#env;
    if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI) {
      url = env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
        ? new URL(env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, 'http://169.254.170.2').href
        : env.AWS_CONTAINER_CREDENTIALS_FULL_URI!;
      const token = env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
        ? (await readFile(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, 'utf8')).trim()
        : env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
      if (token) headers.authorization = token;
    } else {
      const token = await metadataText(`${this.#imds}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } });
      headers['x-aws-ec2-metadata-token'] = token;
      const roles = await metadataText(`${this.#imds}/latest/meta-data/iam/security-credentials/`, { headers });
      const role = roles.split(/\r?\n/)[0]?.trim();
      if (!role) throw new WsdError('PERMISSION_DENIED', 'storage/s3: credentials.source iam: this instance has no IAM role');
      url = `${this.#imds}/latest/meta-data/iam/security-credentials/${encodeURIComponent(role)}`;
    }
    let answer: Record<string, string | undefined>;
    try {
      answer = JSON.parse(await metadataText(url, { headers })) as Record<string, string | undefined>;
    } catch (error) {
      if (isWsdError(error)) throw error;
      // Never the parser's message: it quotes the document, which holds the secret key.
      throw new WsdError('UNAVAILABLE', 'storage/s3: credentials.source iam: the metadata service answered with a credentials document that is not JSON');
    }
    const accessKey = answer.AccessKeyId ?? answer.AccessKeyID;
    const secretKey = answer.SecretAccessKey;
    if ((answer.Code !== undefined && answer.Code !== 'Success') || !accessKey || !secretKey) {
      throw new WsdError('PERMISSION_DENIED', `storage/s3: credentials.source iam: no credentials from the metadata service (${answer.Code ?? 'no Code'})`);
    }
    const credentials = new Credentials({ accessKey, secretKey, ...(answer.Token ? { sessionToken: answer.Token } : {}) });
    const expiresAt = answer.Expiration ? Date.parse(answer.Expiration) : Date.now() + 3600_000;
    this.#cached = { expiresAt: Number.isNaN(expiresAt) ? Date.now() + 3600_000 : expiresAt, credentials };
    return credentials;
  }
}

async function metadataText(url: string, init: RequestInit): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(metadataTimeoutMs) });
  } catch (error) {
    throw new WsdError('UNAVAILABLE', `storage/s3: credentials.source iam: metadata service ${new URL(url).origin} unreachable (${(error as Error).message})`, { cause: error });
  }
  const text = await response.text();
  if (!response.ok) {
    throw new WsdError(
      response.status >= 500 ? 'UNAVAILABLE' : 'PERMISSION_DENIED',
      `storage/s3: credentials.source iam: metadata service answered ${response.status} for ${new URL(url).pathname}`,
    );
  }
  return text;
}

/** The WsdError a credential provider threw, when minio wrapped it ("Unable to get credentials: …"). */
export function credentialFailure(error: unknown): WsdError | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (isWsdError(e)) return e;
  }
  return undefined;
}
