import type { Gitml } from '../context';
import { locate } from './resolve';
import { formatRef, parseRef } from './names';

export interface LineageNode {
  id: string;
  kind: 'asset' | 'run' | 'commit';
  label: string;
  detail?: Record<string, string>;
}

export interface LineageEdge {
  from: string;
  to: string;
  label: string;
}

export interface LineageGraph {
  root: string;
  nodes: LineageNode[];
  edges: LineageEdge[];
}

/** Walks an asset's lineage recursively (inputs, the run that made it, the commit), across repositories. */
export async function buildLineage(gitml: Gitml, refText: string, maxDepth = 20): Promise<LineageGraph> {
  const nodes = new Map<string, LineageNode>();
  const edges: LineageEdge[] = [];
  // Inputs of an asset in another repository are relative to that repository.
  const visit = async (text: string, depth: number, baseRepo?: string): Promise<string> => {
    const parsed = parseRef(text);
    const ref = parsed.repo || !baseRepo ? parsed : { ...parsed, repo: baseRepo };
    const { asset } = await locate(gitml, ref);
    const id = formatRef({ repo: ref.repo, type: asset.type, name: asset.name, selector: asset.version });
    if (nodes.has(id)) return id;
    nodes.set(id, { id, kind: 'asset', label: id, detail: { digest: asset.doc.digest.value.slice(0, 12), created: asset.doc.created.time, author: asset.doc.created.author } });
    const lineage = asset.doc.lineage;
    if (lineage.commit) {
      const cid = `commit:${lineage.commit}`;
      if (!nodes.has(cid)) nodes.set(cid, { id: cid, kind: 'commit', label: `commit ${lineage.commit.slice(0, 12)}` });
      edges.push({ from: cid, to: id, label: 'registered from' });
    }
    if (lineage.run) {
      const rid = `run:${lineage.run.id}`;
      if (!nodes.has(rid)) nodes.set(rid, { id: rid, kind: 'run', label: `run ${lineage.run.id}`, detail: { experiment: lineage.run.experiment, commit: lineage.run.commit } });
      edges.push({ from: rid, to: id, label: 'produced' });
      const cid = `commit:${lineage.run.commit}`;
      if (!nodes.has(cid)) nodes.set(cid, { id: cid, kind: 'commit', label: `commit ${lineage.run.commit.slice(0, 12)}` });
      edges.push({ from: cid, to: rid, label: 'code' });
    }
    if (depth < maxDepth) {
      for (const input of lineage.inputs) {
        const child = await visit(input.ref, depth + 1, input.repo ?? ref.repo).catch(() => {
          const missing = input.ref;
          if (!nodes.has(missing)) nodes.set(missing, { id: missing, kind: 'asset', label: `${missing} (not found)` });
          return missing;
        });
        edges.push({ from: child, to: lineage.run ? `run:${lineage.run.id}` : id, label: 'input' });
      }
    }
    return id;
  };
  const root = await visit(refText, 0);
  return { root, nodes: [...nodes.values()], edges: dedupeEdges(edges) };
}

function dedupeEdges(edges: LineageEdge[]): LineageEdge[] {
  const seen = new Set<string>();
  return edges.filter((e) => {
    const k = `${e.from}\0${e.to}\0${e.label}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Renders a graph. Pure. */
export function renderLineage(g: LineageGraph, format: 'text' | 'json' | 'dot' | 'mermaid'): string {
  switch (format) {
    case 'json':
      return JSON.stringify(g, null, 2);
    case 'dot': {
      const q = (s: string) => JSON.stringify(s);
      const shape = (n: LineageNode) => (n.kind === 'asset' ? 'box' : n.kind === 'run' ? 'ellipse' : 'note');
      return [
        'digraph lineage {',
        '  rankdir=LR;',
        ...g.nodes.map((n) => `  ${q(n.id)} [label=${q(n.label)}, shape=${shape(n)}];`),
        ...g.edges.map((e) => `  ${q(e.from)} -> ${q(e.to)} [label=${q(e.label)}];`),
        '}',
      ].join('\n');
    }
    case 'mermaid': {
      const ids = new Map(g.nodes.map((n, i) => [n.id, `n${i}`]));
      const label = (n: LineageNode) => n.label.replace(/"/g, "'");
      const box = (n: LineageNode) => (n.kind === 'asset' ? `["${label(n)}"]` : n.kind === 'run' ? `(["${label(n)}"])` : `[/"${label(n)}"/]`);
      return ['flowchart LR', ...g.nodes.map((n) => `  ${ids.get(n.id)}${box(n)}`), ...g.edges.map((e) => `  ${ids.get(e.from)} -->|${e.label}| ${ids.get(e.to)}`)].join('\n');
    }
    case 'text': {
      const children = new Map<string, LineageEdge[]>();
      for (const e of g.edges) children.set(e.to, [...(children.get(e.to) ?? []), e]);
      const byId = new Map(g.nodes.map((n) => [n.id, n]));
      const lines: string[] = [];
      const walk = (id: string, indent: string, seen: Set<string>) => {
        for (const e of children.get(id) ?? []) {
          const n = byId.get(e.from)!;
          lines.push(`${indent}└─ ${e.label}: ${n.label}`);
          if (!seen.has(e.from)) walk(e.from, `${indent}   `, new Set([...seen, e.from]));
        }
      };
      lines.push(byId.get(g.root)!.label);
      walk(g.root, '', new Set([g.root]));
      return lines.join('\n');
    }
  }
}
