// What `prepare` decides once and `run`/`run-prepared` execute: per app, the
// resolved process (args, env, user, cwd) and its mounts, kept as plan.json
// in the pod dir next to the appc pod manifest.

export interface PlannedMount {
  /** Absolute path inside the app. */
  destination: string;
  /** Host path; relative paths are inside the pod dir (empty volumes). */
  source: string;
  readOnly: boolean;
  recursive: boolean;
}

export interface PlannedApp {
  name: string;
  imageKey: string;
  /** Rendered tree (overlay lower dir, or copy source with --no-overlay). */
  treeRootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  readonlyRootfs: boolean;
  mounts: PlannedMount[];
  /** The image has a non-empty /etc/hosts of its own. */
  imageHasHosts: boolean;
  /** Resolved isolators (stage1/isolators.ts); absent in plans written before isolators existed. */
  security?: import('../stage1/isolators.ts').AppSecurity;
}

export interface Plan {
  flavor: 'default' | 'fly';
  noOverlay: boolean;
  /** --private-users: the pod's user namespace maps 0..count-1 to uidBase.. (pod/userns.ts). */
  privateUsers?: { uidBase: number; count: number };
  apps: PlannedApp[];
}
