import YAML from 'yaml';
import type { Gitml } from '../context';
import { stageHistory, type StageEvent } from '../assets/history';
import { buildLineage, type LineageGraph } from '../assets/lineage';
import { ASSET_TYPES, formatRef, parseRef, validateName, validateVersion, type AssetType } from '../assets/names';
import { listVersions, readDocument, retiredVersions, type AssetSource } from '../assets/registry';
import { localSource } from '../assets/resolve';
import { openRemoteRepo } from '../assets/remote-repo';
import { describeDifference } from '../assets/verify';
import type { AssetDocument } from '../assets/schema';
import { gitZ, runGit } from '../git/exec';
import { findRuns } from '../runs/list';
import { isStored } from '../objects/object-store';
import { redactUrl } from '../url-secrets';

/**
 * What `gitml ui` shows, read from one repository (this one, or another through the same blob-less
 * fetch `gitml get` uses). Read-only: nothing here writes to the repository or the store.
 */
export interface AssetSummary {
  type: AssetType;
  name: string;
  versions: { version: string; created: string; description: string; retired: boolean; tags: Record<string, string> }[];
  /** Stage or alias → the version that holds it now. */
  stages: Record<string, string>;
}

export interface FileRow {
  path: string;
  size: number;
  sha256: string;
  cached: boolean;
  /** true/false, or null when the store could not be asked. */
  stored: boolean | null;
}

export interface VersionPage {
  ref: string;
  type: AssetType;
  name: string;
  version: string;
  doc: AssetDocument;
  yaml: string;
  files: FileRow[];
  moreFiles: number;
  storeNote: string | null;
  lineage: LineageGraph | null;
  lineageError: string | null;
  history: StageEvent[];
  versions: string[];
  retired: boolean;
}

export class UiModel {
  private constructor(
    readonly gitml: Gitml,
    readonly source: AssetSource,
    /** `<url>#` for another repository, '' for this one. */
    readonly prefix: string,
    readonly title: string,
  ) {}

  static async open(gitml: Gitml, repoUrl?: string): Promise<UiModel> {
    if (!repoUrl) {
      const title = gitml.repo.workTree ?? gitml.repo.gitDir;
      return new UiModel(gitml, localSource(gitml), '', title);
    }
    const remote = await openRemoteRepo(repoUrl, gitml.env, gitml.cache.root);
    return new UiModel(gitml, { kind: 'tree', treeish: remote.head, git: remote.git }, `${remote.url}#`, redactUrl(remote.url));
  }

  private ref(type: AssetType, name: string, selector: string): string {
    return `${this.prefix}${formatRef({ type, name, selector })}`;
  }

  /** Assets by type, with versions and current stages; `q` filters by name, tag or description. */
  async assets(q = ''): Promise<AssetSummary[]> {
    const needle = q.trim().toLowerCase();
    const byName = new Map<string, AssetSummary>();
    for (const v of await listVersions(this.source)) {
      const doc = await readDocument(this.source, v).catch(() => null);
      if (!doc) continue;
      const key = `${v.type}/${v.name}`;
      let s = byName.get(key);
      if (!s) byName.set(key, (s = { type: v.type, name: v.name, versions: [], stages: {} }));
      s.versions.push({ version: v.version, created: doc.created.time, description: doc.description, retired: false, tags: doc.tags });
    }
    const out: AssetSummary[] = [];
    for (const s of byName.values()) {
      const text = [s.name, ...s.versions.flatMap((v) => [v.description, ...Object.entries(v.tags).flatMap(([k, val]) => [k, val, `${k}=${val}`])])].join('\n').toLowerCase();
      if (needle && !text.includes(needle)) continue;
      const retired = await retiredVersions(this.source, s.type, s.name);
      for (const v of s.versions) v.retired = retired.has(v.version);
      for (const e of await stageHistory(this.gitml, parseRef(this.ref(s.type, s.name, 'latest'))).catch(() => [] as StageEvent[])) if (e.current) s.stages[e.stage] = e.version;
      out.push(s);
    }
    return out.sort((a, b) => ASSET_TYPES.indexOf(a.type) - ASSET_TYPES.indexOf(b.type) || a.name.localeCompare(b.name));
  }

  /** One version's page, or null when there is no such version. Names and versions are validated first. */
  async version(type: AssetType, name: string, version: string): Promise<VersionPage | null> {
    validateName(name);
    validateVersion(version);
    const doc = await readDocument(this.source, { type, name, version }).catch(() => null);
    if (!doc) return null;
    const ref = this.ref(type, name, version);
    const shown = doc.digest.files.slice(0, 500);
    const files: FileRow[] = [];
    for (const f of shown) files.push({ path: f.path, size: f.size, sha256: f.sha256, cached: await this.gitml.cache.has(f.sha256, f.size).catch(() => false), stored: null });
    let storeNote: string | null = null;
    try {
      const objects = await this.gitml.objects();
      const presence = await objects.presence(shown.map((f) => ({ oid: f.sha256, size: f.size })), 16);
      for (const row of files) row.stored = isStored(presence.get(row.sha256));
      storeNote = redactUrl(objects.url);
    } catch (e) {
      storeNote = `the store could not be asked: ${(e as Error).message}`;
    }
    let lineage: LineageGraph | null = null;
    let lineageError: string | null = null;
    try {
      lineage = await buildLineage(this.gitml, ref);
    } catch (e) {
      lineageError = (e as Error).message;
    }
    const history = await stageHistory(this.gitml, parseRef(ref)).catch(() => [] as StageEvent[]);
    const versions = (await listVersions(this.source, type)).filter((v) => v.name === name).map((v) => v.version);
    const retired = (await retiredVersions(this.source, type, name)).has(version);
    return { ref, type, name, version, doc, yaml: YAML.stringify(doc, { lineWidth: 0 }), files, moreFiles: doc.digest.files.length - shown.length, storeNote, lineage, lineageError, history, versions, retired };
  }

  /** Files added, removed and changed between two versions of one asset. */
  async diff(type: AssetType, name: string, a: string, b: string): Promise<{ a: AssetDocument; b: AssetDocument; changes: string[]; same: boolean } | null> {
    validateName(name);
    validateVersion(a);
    validateVersion(b);
    const [x, y] = await Promise.all([readDocument(this.source, { type, name, version: a }), readDocument(this.source, { type, name, version: b })]);
    if (!x || !y) return null;
    const text = describeDifference(x.digest.files, y.digest.files);
    return { a: x, b: y, same: x.digest.value === y.digest.value, changes: x.digest.value === y.digest.value ? [] : text.split(', ').filter(Boolean) };
  }

  /** Runs: this repository's records (and cluster runs), or another repository's committed records. */
  async runs(): Promise<{ id: string; experiment: string; status: string; commit: string; start: string; text: string | null }[]> {
    if (!this.prefix) return (await findRuns(this.gitml, this.gitml.env)).map((r) => ({ ...r.row, text: r.text }));
    if (this.source.kind !== 'tree') return [];
    const out = [];
    for (const p of await gitZ(this.source.git, ['ls-tree', '-r', '-z', '--name-only', this.source.treeish, '--', 'experiments'])) {
      if (!/^experiments\/[^/]+\/runs\/[^/]+\/run\.yaml$/.test(p)) continue;
      const r = await runGit(this.source.git, ['show', `${this.source.treeish}:${p}`], { okCodes: [128] });
      if (r.code !== 0) continue;
      const text = r.stdout.toString('utf8');
      const doc = (YAML.parse(text) ?? {}) as Record<string, unknown>;
      out.push({ id: String(doc.id), experiment: String(doc.experiment), status: String(doc.status), commit: String(doc.commit ?? '').slice(0, 12), start: String(doc.start ?? ''), text });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }
}
