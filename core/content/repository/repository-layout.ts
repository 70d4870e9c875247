/**
 * Where an owner's chunk repository lives in storage (ADR 0007). Packs and index objects are shared by all of the
 * owner's workspaces (identical content is stored once per owner, never across owners: a backup can only reference
 * what its owner's repository holds); trees and manifests sit beside the workspace's other backups.
 *
 *   <owner>/repo/packs/<random id>.pack       zstd frames (or raw bytes), one per chunk; immutable
 *   <owner>/repo/index/<time>-<nonce>.json.zst  which chunks each pack holds, at which offsets; immutable
 *   <owner>/repo/locks/shared-<time>-<nonce>.json   a backup in flight (it may reference existing packs)
 *   <owner>/repo/locks/exclusive.json         garbage collection in progress
 */
export const packKey = (owner: string, id: string) => `${owner}/repo/packs/${id}.pack`;
export const packsPrefix = (owner: string) => `${owner}/repo/packs/`;
export const indexPrefix = (owner: string) => `${owner}/repo/index/`;
export const locksPrefix = (owner: string) => `${owner}/repo/locks/`;
export const exclusiveLockKey = (owner: string) => `${owner}/repo/locks/exclusive.json`;

/** `<time>-<nonce>`: sortable by creation time, unique. */
export function timeNonce(random: string): string {
  return `${new Date().toISOString().replace(/[-:.]/g, '')}-${random}`;
}

export function packIdOf(key: string, owner: string): string | undefined {
  const prefix = packsPrefix(owner);
  if (!key.startsWith(prefix) || !key.endsWith('.pack')) return undefined;
  const id = key.slice(prefix.length, -'.pack'.length);
  return /^[0-9a-f]{64}$/.test(id) ? id : undefined;
}
