import type { Gitml } from '../context';
import { formatRef, parseRef, type AssetRef } from './names';
import { openRemoteRepo, type RemoteRepo } from './remote-repo';
import { resolveInRepo, type AssetSource, type ResolvedAsset } from './registry';
import type { LineageEntry } from './schema';

/** Stage → branch: `gitml.stage.<stage>.branch` in .gitmlconfig, else the stage's own name. */
export function stageBranchOf(gitml: Gitml, stage: string): string {
  return gitml.settings.get(`gitml.stage.${stage}.branch`)?.value ?? stage;
}

export interface Located {
  asset: ResolvedAsset;
  source: AssetSource;
  /** Set when the asset lives in another repository. */
  remote?: RemoteRepo;
}

/** Where this repository's assets are read from: the work tree when there is one, else HEAD. */
export function localSource(gitml: Gitml): AssetSource {
  return gitml.repo.workTree ? { kind: 'worktree', root: gitml.repo.workTree, git: gitml.repo.git } : { kind: 'tree', treeish: 'HEAD', git: gitml.repo.git };
}

/** Resolves a reference here, or in another repository for `<url>#...` references. */
export async function locate(gitml: Gitml, refText: string | AssetRef): Promise<Located> {
  const ref = typeof refText === 'string' ? parseRef(refText) : refText;
  if (ref.repo) {
    const remote = await openRemoteRepo(ref.repo, gitml.env, gitml.cache.root);
    const source: AssetSource = { kind: 'tree', treeish: remote.head, git: remote.git };
    return { asset: await resolveInRepo(source, ref, (s) => stageBranchOf(gitml, s)), source, remote };
  }
  const source = localSource(gitml);
  return { asset: await resolveInRepo(source, ref, (s) => stageBranchOf(gitml, s)), source };
}

/** A lineage entry for an input: the exact version and content digest it resolved to. */
export async function lineageInput(gitml: Gitml, refText: string): Promise<LineageEntry> {
  const ref = parseRef(refText);
  const { asset } = await locate(gitml, ref);
  return {
    ref: formatRef({ repo: ref.repo, type: asset.type, name: asset.name, selector: asset.version }),
    type: asset.type,
    name: asset.name,
    version: asset.version,
    digest: asset.doc.digest.value,
    ...(ref.repo ? { repo: ref.repo } : {}),
  };
}
