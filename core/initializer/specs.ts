/**
 * The specs of the built-in initializer kinds, as plugins receive them. They are domain objects built by explicit
 * code in `core/api/initializer-specs.ts` from the wire message — never proto-loader output, so a loader option
 * cannot change a plugin's input. Field names are the API's (snake_case, including the wire contract's
 * `clone_taget` and `upstream_Remote_uri` spellings): an error's `field` then names exactly what the caller sent
 * (`initializer.git.clone_taget`). Enums are their names. Absent strings are absent, not `''`.
 */

/** One initializer to run: its kind (the `WorkspaceInitializer` oneof member) and that member's spec. */
export interface InitializerRef {
  kind: string;
  spec: unknown;
}

export type EmptySpec = Record<string, never>;

export type GitTargetMode = 'REMOTE_HEAD' | 'REMOTE_COMMIT' | 'REMOTE_BRANCH' | 'LOCAL_BRANCH';
export type GitAuthMethod = 'NO_AUTH' | 'BASIC_AUTH' | 'BASIC_AUTH_OTS';

export interface GitSpec {
  remote_uri?: string;
  upstream_Remote_uri?: string;
  target_mode?: GitTargetMode;
  clone_taget?: string;
  checkout_location?: string;
  config?: {
    custom_config?: Record<string, string>;
    authentication?: GitAuthMethod;
    auth_user?: string;
    auth_password?: string;
    auth_ots?: string;
  };
  full_clone?: boolean;
}

export interface SnapshotSpec {
  snapshot?: string;
  from_volume_snapshot?: boolean;
}

export interface PrebuildSpec {
  prebuild?: SnapshotSpec;
  git?: GitSpec[];
}

export interface CompositeSpec {
  /** The children, in order. */
  initializer?: InitializerRef[];
}

export interface DownloadSpec {
  files?: Array<{ url?: string; file_path?: string; digest?: string }>;
  target_location?: string;
}

export interface FromBackupSpec {
  checkout_location?: string;
  from_volume_snapshot?: boolean;
}
