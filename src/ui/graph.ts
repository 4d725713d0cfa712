import dagre from '@dagrejs/dagre';
import type { LineageGraph, LineageNode } from '../assets/lineage';

/** A lineage graph laid out left to right (inputs on the left), ready to draw. Pure. */
export interface Layout {
  width: number;
  height: number;
  nodes: (LineageNode & { x: number; y: number; w: number; h: number; root: boolean })[];
  edges: { from: string; to: string; label: string; points: { x: number; y: number }[]; labelAt: { x: number; y: number } | null }[];
}

const CHAR = 7.2;
const PAD = 16;

export function layoutLineage(graph: LineageGraph): Layout {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 70, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) g.setNode(n.id, { width: Math.min(420, Math.max(90, n.label.length * CHAR + PAD * 2)), height: 34 });
  // Labels get room of their own in the layout (dagre places them), so they never sit under a box.
  graph.edges.forEach((e, i) => g.setEdge(e.from, e.to, { label: e.label, width: e.label.length * 6 + 8, height: 14, labelpos: 'c' }, `e${i}`));
  dagre.layout(g);
  const info = g.graph() as { width?: number; height?: number };
  return {
    width: Math.ceil(info.width ?? 0),
    height: Math.ceil(info.height ?? 0),
    nodes: graph.nodes.map((n) => {
      const p = g.node(n.id) as { x: number; y: number; width: number; height: number };
      return { ...n, x: p.x, y: p.y, w: p.width, h: p.height, root: n.id === graph.root };
    }),
    edges: graph.edges.map((e, i) => {
      const laid = g.edge({ v: e.from, w: e.to, name: `e${i}` }) as { points?: { x: number; y: number }[]; x?: number; y?: number } | undefined;
      return { ...e, points: (laid?.points ?? []).map((p) => ({ x: p.x, y: p.y })), labelAt: laid?.x !== undefined && laid.y !== undefined ? { x: laid.x, y: laid.y } : null };
    }),
  };
}
