import { lookup } from 'node:dns/promises';
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { AddressPolicy, parseIp, WsdError } from '../../../core/plugin-api.js';

/**
 * What a request may ask git to do. Every field of a git spec comes from a user in the end, and git runs on the
 * node (as root unless `workspaces.uid` is set): a remote URL picks a transport (`ext::` runs a command), a config
 * key can name a command (`core.sshCommand`, `*.helper`, `filter.*`), a ref that starts with `-` is an option.
 * Everything here is an allow-list: what is not named is refused with INVALID_ARGUMENT naming the field.
 */
export interface GitRemotePolicy {
  /** Transports a remote may use: `https`, `ssh`, `http`, `git`, `file`. Default `https`, `ssh`. */
  protocols: readonly GitProtocol[];
  /**
   * Folders whose repositories may be cloned by local path or `file://` URL (resolved on disk, symlinks followed,
   * before the check). Empty (the default): no local repository is reachable, so no request can read another
   * workspace's checkout or the daemon's own files. `file` must also be in `protocols`.
   */
  localRoots: readonly string[];
  /** Extra `custom_config` keys an operator allows beyond the built-in safe list (never a key that runs commands). */
  extraConfigKeys: readonly string[];
  /** Networks a remote's host may not resolve to (default: loopback, link-local/metadata), unless allowed. */
  deniedNetworks?: readonly string[];
  allowedNetworks?: readonly string[];
}

export const gitProtocols = ['https', 'ssh', 'http', 'git', 'file'] as const;
export type GitProtocol = (typeof gitProtocols)[number];

export const defaultGitRemotePolicy: GitRemotePolicy = { protocols: ['https', 'ssh'], localRoots: [], extraConfigKeys: [] };

const maxUrlLength = 4096;
const hostPattern = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)$/;

/** A remote the policy allows, with the one transport git needs for it (GIT_ALLOW_PROTOCOL). */
export interface CheckedRemote {
  /** The URL git gets: without the credentials an http(s) URL carried (git would store them in `.git/config`). */
  uri: string;
  protocol: GitProtocol;
  /** `user:password` taken out of an http(s) URL; they reach git through the credential helper instead. */
  credentials?: { user: string; password: string };
  /**
   * `-c` arguments for every git command talking to this remote: for http(s) the checked addresses pinned
   * (`http.curloptResolve`, so a second DNS answer cannot differ) and no redirects (they would go unchecked).
   */
  gitArgs: string[];
}

/**
 * Checks a remote URL against the policy: its form (URL, scp-like `user@host:path`, or a local path), its transport,
 * its host (never an option), and for local repositories their real location on disk.
 */
export async function checkRemote(uri: unknown, policy: GitRemotePolicy, field: string): Promise<CheckedRemote> {
  const refuse = (why: string): never => {
    throw new WsdError('INVALID_ARGUMENT', `${field} ${why}`, { field });
  };
  if (typeof uri !== 'string' || uri === '') return refuse('is required');
  if (uri.length > maxUrlLength) refuse(`must be at most ${maxUrlLength} characters`);
  // Backslashes are read as `/` by the WHATWG URL parser but as userinfo by git and curl (`http://a\\@127.0.0.1/`
  // would be checked as host `a` and fetched from 127.0.0.1); quotes and angle brackets have no place in a remote.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\"'<>`]/.test(uri)) refuse('must not contain spaces, control characters, backslashes, quotes or angle brackets');
  if (uri.startsWith('-')) refuse('must not start with "-"');
  // `<transport>::<address>` runs a remote helper of that name (`ext::` executes its address as a command).
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(uri)) refuse('uses a transport helper (`<name>::`), which is never allowed');

  let protocol: GitProtocol;
  let localPath: string | undefined;
  let host = '';
  let port = 0;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(uri)?.[1]?.toLowerCase();
  if (scheme) {
    if (!(gitProtocols as readonly string[]).includes(scheme)) refuse(`uses ${scheme}://, which wsd does not support (${gitProtocols.join(', ')})`);
    protocol = scheme as GitProtocol;
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return refuse('is not a valid URL');
    }
    if (protocol === 'file') {
      if (url.host) refuse('must name a local path (file:///path) — file:// URLs with a host are not supported');
      localPath = decoded(url.pathname, refuse);
    } else {
      if (!hostPattern.test(url.hostname)) refuse(`has an invalid host ${JSON.stringify(url.hostname)}`);
      if (url.username.startsWith('-')) refuse('has a user name that starts with "-"');
      host = url.hostname.replace(/^\[|\]$/g, '');
      port = Number(url.port) || defaultPorts[protocol];
      if ((protocol === 'https' || protocol === 'http') && (url.username || url.password)) {
        // The clone's origin URL is kept in `.git/config`, which backups, snapshots and shared prebuilds carry.
        const credentials = { user: decoded(url.username, refuse), password: decoded(url.password, refuse) };
        url.username = '';
        url.password = '';
        return { ...(await finish(url.href, protocol)), credentials };
      }
      // Git gets the URL as checked (serialized by the same parser that found its host), never the raw text.
      return finish(url.href, protocol);
    }
  } else if (uri.startsWith('/') || uri.startsWith('.') || !uri.includes(':')) {
    protocol = 'file';
    localPath = uri;
  } else {
    // scp-like syntax, `[user@]host:path`: git runs ssh for it.
    const match = /^(?:([^@/:]+)@)?([^@/:]+|\[[^\]]+\]):(.*)$/.exec(uri);
    if (!match) return refuse('is neither a URL, nor user@host:path, nor a local path');
    if (match[1]?.startsWith('-')) refuse('has a user name that starts with "-"');
    if (!hostPattern.test(match[2]!)) refuse(`has an invalid host ${JSON.stringify(match[2])}`);
    protocol = 'ssh';
    host = match[2]!.replace(/^\[|\]$/g, '');
    port = defaultPorts.ssh;
  }

  return finish(uri, protocol, localPath);

  async function finish(checked: string, transport: GitProtocol, local?: string): Promise<CheckedRemote> {
    if (!policy.protocols.includes(transport)) {
      refuse(`uses ${transport === 'file' ? 'a local repository' : transport}, which is not allowed here (initializers.git.protocols: ${policy.protocols.join(', ') || 'none'})`);
    }
    if (local === undefined) return { uri: checked, protocol: transport, gitArgs: await checkNetwork(host, port, transport, policy, field) };
    // A file:// URL of the real path: git's own transport (no hard links into a folder outside the workspace).
    return { uri: `file://${await checkLocalRepository(local, policy, field, refuse)}`, protocol: transport, gitArgs: [] };
  }
}

/** The networks a git policy lets remotes (and one-time-secret URLs) reach. */
export function networksOf(policy: GitRemotePolicy): AddressPolicy {
  return new AddressPolicy({ ...(policy.deniedNetworks ? { denied: policy.deniedNetworks } : {}), allowed: policy.allowedNetworks ?? [] });
}

/** A percent-decoded URL part; INVALID_ARGUMENT for malformed escapes and for control characters (NUL…). */
function decoded(part: string, refuse: (why: string) => never): string {
  let value: string;
  try {
    value = decodeURIComponent(part);
  } catch {
    return refuse('has a malformed percent escape');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) refuse('has control characters in it');
  return value;
}

const defaultPorts: Record<GitProtocol, number> = { https: 443, http: 80, ssh: 22, git: 9418, file: 0 };

/**
 * The addresses a remote's host resolves to, each checked against the policy's networks: a request must not turn
 * the node's git into a client of its loopback services or the cloud metadata endpoint (nor into a port scanner:
 * git's errors tell an open port from a closed one). PERMISSION_DENIED naming the field. For http(s) the checked
 * addresses are pinned for git's own connections; ssh and git:// resolve again (a DNS answer that changes in
 * between is not covered for them).
 */
export async function checkNetwork(host: string, port: number, transport: GitProtocol, policy: GitRemotePolicy, field: string): Promise<string[]> {
  const networks = networksOf(policy);
  const literal = parseIp(host) ? [host] : undefined;
  const addresses =
    literal ??
    (await lookup(host, { all: true, verbatim: true }).then(
      (found) => found.map((a) => a.address),
      (error: NodeJS.ErrnoException) => {
        throw new WsdError('UNAVAILABLE', `${field}: cannot resolve ${host} (${error.code ?? error.message})`, { field });
      },
    ));
  if (addresses.length === 0 || addresses.some((address) => !networks.allows(address))) {
    throw new WsdError('PERMISSION_DENIED', `${field} leads to an address that is not allowed by initializers.git.deniedNetworks`, { field });
  }
  if (transport !== 'http' && transport !== 'https') return [];
  if (literal) return ['-c', 'http.followRedirects=false'];
  const pinned = addresses.map((a) => (a.includes(':') ? `[${a}]` : a)).join(',');
  return ['-c', `http.curloptResolve=${host}:${port}:${pinned}`, '-c', 'http.followRedirects=false'];
}

/**
 * A local repository below `localRoots`, resolved the way git would find it — but without letting git search:
 * git tries `<path>/.git`, `<path>`, `<path>.git/.git`, `<path>.git` and follows a `.git` *file* (`gitdir: …`)
 * anywhere. The repository must be `<path>` itself (bare) or `<path>/.git` as a real folder, every real path inside
 * the allowed folders, with no `commondir` or alternates leading elsewhere. Returns the real path to clone from.
 * Existence is told only for paths inside an allowed folder (no probing the node's files).
 */
async function checkLocalRepository(localPath: string, policy: GitRemotePolicy, field: string, refuse: (why: string) => never): Promise<string> {
  if (!path.isAbsolute(localPath)) refuse('must be an absolute path when it names a local repository');
  const roots = await Promise.all(policy.localRoots.map((root) => realpath(root).catch(() => path.resolve(root))));
  const under = (p: string) => roots.some((root) => p === root || p.startsWith(`${root}${path.sep}`));
  const lexical = path.resolve(localPath);
  if (!under(lexical) && !policy.localRoots.some((root) => lexical.startsWith(`${path.resolve(root)}${path.sep}`))) {
    refuse('is not inside a folder listed in initializers.git.localRoots');
  }
  const real = await realpath(localPath).catch(() => undefined);
  if (real === undefined) throw new WsdError('FAILED_PRECONDITION', `${field}: the local repository does not exist`, { field });
  if (!under(real)) refuse('leads (through a symlink) out of the folders listed in initializers.git.localRoots');
  const info = await lstat(real);
  if (!info.isDirectory()) refuse('is not a folder');
  const dotGit = await lstat(path.join(real, '.git')).catch(() => undefined);
  if (dotGit && !dotGit.isDirectory()) refuse('has a .git that is not a real folder (a gitfile or a symlink could lead anywhere)');
  const gitDir = dotGit ? path.join(real, '.git') : real;
  if (!(await lstat(path.join(gitDir, 'HEAD')).catch(() => undefined))?.isFile() || !(await lstat(path.join(gitDir, 'objects')).catch(() => undefined))?.isDirectory()) {
    throw new WsdError('FAILED_PRECONDITION', `${field}: the local path is not a git repository`, { field });
  }
  for (const name of ['commondir', 'objects/info/alternates', 'objects/info/http-alternates']) {
    if (await lstat(path.join(gitDir, name)).catch(() => undefined)) refuse(`names a repository with ${name}, which would make git read another folder`);
  }
  return real;
}

/** Settings that can neither run a command, nor redirect a fetch, nor read files of the node; compared lowercased. */
const safeConfigKeys = new Set([
  'core.autocrlf', 'core.eol', 'core.filemode', 'core.ignorecase', 'core.symlinks', 'core.longpaths', 'core.precomposeunicode',
  'core.quotepath', 'core.safecrlf', 'core.whitespace', 'core.compression', 'core.bigfilethreshold', 'core.abbrev', 'core.checkstat',
  'core.trustctime', 'core.untrackedcache', 'core.preloadindex', 'core.sparsecheckout', 'core.commentchar',
  'user.name', 'user.email', 'author.name', 'author.email', 'committer.name', 'committer.email',
  'init.defaultbranch', 'pull.rebase', 'pull.ff', 'push.default', 'push.autosetupremote', 'fetch.prune', 'fetch.prunetags',
  'fetch.writecommitgraph', 'merge.ff', 'merge.conflictstyle', 'rebase.autostash', 'rebase.autosquash',
  'rebase.updaterefs', 'branch.autosetuprebase', 'branch.autosetupmerge', 'color.ui', 'diff.renames', 'diff.algorithm',
  'diff.colormoved', 'status.showuntrackedfiles', 'pack.threads',
  'gc.auto', 'index.version', 'feature.manyfiles', 'checkout.workers', 'checkout.defaultremote', 'protocol.version',
  'http.sslverify', 'http.postbuffer', 'http.lowspeedlimit', 'http.lowspeedtime', 'http.version', 'http.maxrequests',
  'advice.detachedhead', 'log.date', 'format.pretty', 'help.autocorrect', 'rerere.enabled', 'lfs.fetchexclude',
]);

/**
 * Keys that run a command, load other config, rewrite URLs, hand out credentials or change where git talks to —
 * refused even when an operator lists them in `extraConfigKeys`.
 */
const forbiddenConfigKey =
  /^(include\.|includeif\.|alias\.|filter\.|url\.|credential|protocol\.[^.]*\.?allow|core\.(sshcommand|fsmonitor|hookspath|pager|editor|askpass|gitproxy|worktree|attributesfile|excludesfile|hooks)|diff\.(external|.*\.(command|textconv))|merge\..*\.driver|sequence\.editor|gpg\.|.*\.helper$|.*program$|.*command$|.*\.proxy$|http\.(proxy|sslcainfo|sslcapath|sslcert|sslkey|cookiefile|extraheader)|remote\.|uploadpack\.|receive\.|safe\.|submodule\..*\.(update|url))/;

const maxConfigEntries = 64;
const maxConfigValue = 1024;

/**
 * `--config key=value` arguments for a clone, from a request's `custom_config`: only keys on the safe list (or an
 * operator's extra keys that are not forbidden), values without newlines or NUL, bounded in number and size.
 */
export function checkCustomConfig(config: Record<string, string> | undefined, policy: GitRemotePolicy, field: string): string[] {
  const entries = Object.entries(config ?? {});
  if (entries.length > maxConfigEntries) throw new WsdError('INVALID_ARGUMENT', `${field} may have at most ${maxConfigEntries} entries`, { field });
  const extra = new Set(policy.extraConfigKeys.map((k) => k.toLowerCase()));
  return entries.flatMap(([key, value]) => {
    const at = `${field}[${JSON.stringify(key)}]`;
    const lower = key.toLowerCase();
    if (!/^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$/.test(lower) || key.length > 128) {
      throw new WsdError('INVALID_ARGUMENT', `${at}: ${JSON.stringify(key)} is not a git config key (section.name)`, { field: at });
    }
    if (forbiddenConfigKey.test(lower) || !(safeConfigKeys.has(lower) || extra.has(lower))) {
      throw new WsdError('INVALID_ARGUMENT', `${at}: ${JSON.stringify(key)} is not allowed (it is not on wsd's list of safe git settings; see initializers.git.extraConfigKeys)`, { field: at });
    }
    // eslint-disable-next-line no-control-regex
    if (typeof value !== 'string' || value.length > maxConfigValue || /[\u0000\n\r]/.test(value)) {
      throw new WsdError('INVALID_ARGUMENT', `${at}: the value must be a single line of at most ${maxConfigValue} characters`, { field: at });
    }
    return ['--config', `${key}=${value}`];
  });
}

/** Whether an operator-listed extra key could ever be allowed (config validation uses this). */
export function isForbiddenConfigKey(key: string): boolean {
  return forbiddenConfigKey.test(key.toLowerCase());
}

/** A commit id as REMOTE_COMMIT takes it: hex, abbreviated or full (sha1 or sha256). */
export function checkCommit(target: unknown, field: string): string {
  if (typeof target !== 'string' || !/^[0-9a-fA-F]{4,64}$/.test(target)) {
    throw new WsdError('INVALID_ARGUMENT', `${field} must be a commit id (4 to 64 hex digits) with target_mode REMOTE_COMMIT`, { field });
  }
  return target;
}

/** A branch name that git accepts (`git check-ref-format --branch` rules) and that can never be read as an option. */
export function checkBranch(target: unknown, field: string): string {
  const refuse = (why: string): never => {
    throw new WsdError('INVALID_ARGUMENT', `${field} ${JSON.stringify(target)} is not a valid branch name: ${why}`, { field });
  };
  if (typeof target !== 'string' || target === '') return refuse('it is empty');
  if (target.length > 255) refuse('longer than 255 characters');
  if (!/^[A-Za-z0-9._/+@#,=-]+$/.test(target)) refuse('only letters, digits and . _ / + @ # , = - are allowed');
  if (target.startsWith('-')) refuse('it starts with "-"');
  if (target.includes('..') || target.includes('//') || target.includes('@{') || target === '@') refuse('it contains "..", "//" or "@{"');
  if (target.startsWith('/') || target.endsWith('/') || target.endsWith('.')) refuse('it starts or ends with "/", or ends with "."');
  if (target.split('/').some((part) => part.startsWith('.') || part.endsWith('.lock'))) refuse('a component starts with "." or ends with ".lock"');
  return target;
}

/**
 * Environment for every git process of a request: only the given transports (git enforces it for the clone, its
 * redirects and submodules alike), no system or user config, no prompt.
 */
export function protocolEnv(protocols: Iterable<GitProtocol>): Record<string, string> {
  return { GIT_ALLOW_PROTOCOL: [...new Set(protocols)].join(':') };
}

/** Repository settings a restored checkout may keep: everything else could run a command when git reads it. */
const keptRepositoryKeys =
  /^(core\.(repositoryformatversion|bare|logallrefupdates|sharedrepository)|extensions\.objectformat|remote\.[^\n]+\.(url|fetch|pushurl|tagopt|prune)|branch\.[^\n]+\.(remote|merge|rebase|pushremote)|submodule\.[^\n]+\.(url|path|active|branch|shallow)|lfs\.repositoryformatversion)$/;

/** Whether a key of a restored repository's own config survives {@link sanitizeRepositoryConfig}. */
export function isKeptRepositoryKey(key: string): boolean {
  const lower = key.toLowerCase();
  return keptRepositoryKeys.test(lower) || (safeConfigKeys.has(lower) && !forbiddenConfigKey.test(lower));
}
