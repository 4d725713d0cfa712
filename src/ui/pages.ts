import { h, type VNode } from 'preact';
import htm from 'htm';
import { render } from 'preact-render-to-string';
import { parseRef, type AssetType } from '../assets/names';
import type { AssetDocument } from '../assets/schema';
import { formatBytes } from '../progress';
import { layoutLineage } from './graph';
import type { AssetSummary, VersionPage } from './model';

/**
 * The pages, rendered on the server with preact (no script runs in the browser). preact escapes every
 * text and attribute value, and nothing here uses raw HTML, so names, descriptions, tags and YAML from
 * a repository someone else wrote are shown as text, never run.
 */
const html = htm.bind(h) as (strings: TemplateStringsArray, ...values: unknown[]) => VNode;

export function page(title: string, repo: string, body: VNode): string {
  return `<!doctype html>${render(html`
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · gitml</title>
        <link rel="stylesheet" href="/style.css" />
      </head>
      <body>
        <header>
          <a class="brand" href="/">gitml</a>
          <nav><a href="/">assets</a><a href="/runs">runs</a></nav>
          <span class="repo" title=${repo}>${repo}</span>
        </header>
        <main>${body}</main>
      </body>
    </html>
  `)}`;
}

export const assetHref = (type: AssetType, name: string, version: string) => `/asset/${type}/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;

export function assetsPage(assets: AssetSummary[], q: string): VNode {
  const types = [...new Set(assets.map((a) => a.type))];
  return html`
    <h1>Assets</h1>
    <form class="search" method="get" action="/">
      <input type="search" name="q" value=${q} placeholder="name, tag or description" aria-label="search" />
      <button type="submit">Search</button>
    </form>
    ${assets.length === 0 ? html`<p class="empty">${q ? `Nothing matches "${q}".` : 'No assets registered. Register one: gitml register model <name> <files>'}</p>` : null}
    ${types.map(
      (type) => html`
        <section class="type" data-type=${type}>
          <h2>${type}s</h2>
          <table>
            <thead><tr><th>name</th><th>versions</th><th>stages and aliases</th><th>description</th></tr></thead>
            <tbody>
              ${assets
                .filter((a) => a.type === type)
                .map(
                  (a) => html`
                    <tr class="asset" data-name=${a.name}>
                      <td class="name">${a.name}</td>
                      <td class="versions">
                        ${a.versions.map((v) => html`<a class=${v.retired ? 'version retired' : 'version'} href=${assetHref(a.type, a.name, v.version)} title=${v.retired ? 'retired' : v.created}>${v.version}</a> `)}
                      </td>
                      <td class="stages">${Object.entries(a.stages).map(([stage, v]) => html`<a class="stage" href=${assetHref(a.type, a.name, v)}>${stage} → ${v}</a> `)}</td>
                      <td class="description">${a.versions[a.versions.length - 1]?.description ?? ''}</td>
                    </tr>
                  `,
                )}
            </tbody>
          </table>
        </section>
      `,
    )}
  `;
}

function lineageSvg(p: VersionPage, prefix: string): VNode {
  if (!p.lineage) return html`<p class="error">Lineage unavailable: ${p.lineageError ?? ''}</p>`;
  const l = layoutLineage(p.lineage);
  const hrefOf = (id: string): string | null => {
    if (!id.startsWith(prefix) || id.startsWith('run:') || id.startsWith('commit:')) return null;
    try {
      const r = parseRef(id.slice(prefix.length));
      return r.repo ? null : assetHref(r.type, r.name, r.selector);
    } catch {
      return null;
    }
  };
  const label = (id: string) => (prefix && id.startsWith(prefix) ? id.slice(prefix.length) : id);
  return html`
    <svg class="lineage" role="img" aria-label="lineage graph" viewBox=${`0 0 ${l.width} ${l.height}`} width=${l.width} height=${l.height} xmlns="http://www.w3.org/2000/svg">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" /></marker></defs>
      ${l.edges.map(
        (e) => html`<g class="edge" data-from=${e.from} data-to=${e.to} data-label=${e.label}>
          <path d=${e.points.map((pt, i) => `${i ? 'L' : 'M'} ${pt.x.toFixed(1)} ${pt.y.toFixed(1)}`).join(' ')} marker-end="url(#arrow)" />
          ${e.labelAt ? html`<text x=${e.labelAt.x} y=${e.labelAt.y + 3}>${e.label}</text>` : null}
        </g>`,
      )}
      ${l.nodes.map((n) => {
        const box = html`<g class=${`node ${n.kind}${n.root ? ' root' : ''}`} data-id=${n.id}>
          <rect x=${n.x - n.w / 2} y=${n.y - n.h / 2} width=${n.w} height=${n.h} rx=${n.kind === 'run' ? 17 : 4} />
          <text x=${n.x} y=${n.y + 4}>${label(n.label)}</text>
          <title>${[n.id, ...Object.entries(n.detail ?? {}).map(([k, v]) => `${k}: ${v}`)].join('\n')}</title>
        </g>`;
        const href = hrefOf(n.id);
        return href && !n.root ? html`<a href=${href}>${box}</a>` : box;
      })}
    </svg>
  `;
}

export function versionPage(p: VersionPage, prefix: string): VNode {
  const doc = p.doc;
  const previous = p.versions.filter((v) => v !== p.version && p.versions.indexOf(v) < p.versions.indexOf(p.version)).pop();
  return html`
    <h1><span class="type">${p.type}</span> ${p.name}<span class="at">@</span>${p.version}${p.retired ? html` <span class="badge retired">retired</span>` : null}</h1>
    <p class="description">${doc.description || 'No description.'}</p>
    <dl class="meta">
      <dt>registered</dt><dd>${doc.created.time} by ${doc.created.author}</dd>
      <dt>digest</dt><dd><code>sha256:${doc.digest.value}</code></dd>
      ${doc.lineage.commit ? html`<dt>from commit</dt><dd><code>${doc.lineage.commit}</code></dd>` : null}
      ${Object.keys(doc.tags).length ? html`<dt>tags</dt><dd>${Object.entries(doc.tags).map(([k, v]) => html`<span class="tag">${k}=${v}</span> `)}</dd>` : null}
      <dt>versions</dt><dd>${p.versions.map((v) => (v === p.version ? html`<strong>${v}</strong> ` : html`<a href=${assetHref(p.type, p.name, v)}>${v}</a> `))}</dd>
    </dl>
    ${previous ? html`<p><a class="diff-link" href=${`/diff/${p.type}/${encodeURIComponent(p.name)}/${encodeURIComponent(previous)}/${encodeURIComponent(p.version)}`}>Compare with ${previous}</a></p>` : null}
    <h2>Lineage</h2>
    <div class="graph">${lineageSvg(p, prefix)}</div>
    <h2>Files</h2>
    <p class="note">Bytes in git are pointers: sizes are of the files they stand for. ${p.storeNote ? `Store: ${p.storeNote}` : ''}</p>
    <table class="files">
      <thead><tr><th>path</th><th>size</th><th>sha256</th><th>cache</th><th>store</th></tr></thead>
      <tbody>
        ${p.files.map(
          (f) => html`<tr>
            <td>${f.path}</td><td class="num">${formatBytes(f.size)}</td><td><code>${f.sha256.slice(0, 12)}</code></td>
            <td>${f.cached ? 'yes' : 'no'}</td><td>${f.stored === null ? 'unknown' : f.stored ? 'yes' : 'missing'}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${p.moreFiles > 0 ? html`<p class="note">and ${p.moreFiles} more file(s)</p>` : null}
    <h2>Promotion history</h2>
    ${p.history.length === 0
      ? html`<p class="empty">Never promoted (gitml promote sets stages and aliases).</p>`
      : html`<table class="history"><thead><tr><th>stage</th><th>version</th><th>since</th><th>by</th><th></th></tr></thead><tbody>
          ${p.history.map((e) => html`<tr><td>${e.stage}</td><td>${e.version}</td><td>${e.time}</td><td>${e.by}</td><td>${e.current ? 'current' : ''}</td></tr>`)}
        </tbody></table>`}
    <h2>asset.yaml</h2>
    <pre class="yaml">${p.yaml}</pre>
  `;
}

export function diffPage(type: AssetType, name: string, a: AssetDocument, b: AssetDocument, changes: string[], same: boolean): VNode {
  const spec = (d: AssetDocument) => JSON.stringify(d.spec, null, 2);
  return html`
    <h1>${type} ${name}: ${a.version} → ${b.version}</h1>
    <p><a href=${assetHref(type, name, a.version)}>${a.version}</a> · <a href=${assetHref(type, name, b.version)}>${b.version}</a></p>
    <h2>Files</h2>
    ${same ? html`<p class="same">Same contents.</p>` : html`<ul class="changes">${changes.map((c) => html`<li>${c}</li>`)}</ul>`}
    <h2>Spec</h2>
    ${spec(a) === spec(b) ? html`<p class="same">Same spec.</p>` : html`<div class="two"><pre>${spec(a)}</pre><pre>${spec(b)}</pre></div>`}
  `;
}

export function runsPage(runs: { id: string; experiment: string; status: string; commit: string; start: string }[]): VNode {
  return html`
    <h1>Runs</h1>
    ${runs.length === 0
      ? html`<p class="empty">No runs recorded (gitml run records them).</p>`
      : html`<table class="runs"><thead><tr><th>run</th><th>experiment</th><th>status</th><th>commit</th><th>start</th></tr></thead><tbody>
          ${runs.map((r) => html`<tr class="run" data-status=${r.status}><td><a href=${`/runs/${encodeURIComponent(r.id)}`}>${r.id}</a></td><td>${r.experiment}</td><td class="status">${r.status}</td><td><code>${r.commit}</code></td><td>${r.start}</td></tr>`)}
        </tbody></table>`}
  `;
}

export function runPage(id: string, record: Record<string, unknown> | null, text: string | null): VNode {
  if (!record) return html`<h1>Run ${id}</h1><p class="empty">No record yet (it is still queued or running).</p>`;
  const r = record as { status?: string; command?: string; commit?: string; repo?: string; params?: Record<string, string>; inputs?: { name: string; ref?: string; uri?: string; version?: string; digest: string }[]; outputs?: { name: string; registered?: string; files: unknown[] }[]; durationSeconds?: number; experiment?: string };
  return html`
    <h1>Run ${id} <span class=${`badge ${r.status}`}>${r.status}</span></h1>
    <dl class="meta">
      <dt>experiment</dt><dd>${r.experiment}</dd>
      <dt>code</dt><dd>${r.repo} at <code>${r.commit}</code></dd>
      <dt>command</dt><dd><code>${r.command}</code></dd>
      <dt>duration</dt><dd>${r.durationSeconds} s</dd>
      ${r.params && Object.keys(r.params).length ? html`<dt>params</dt><dd>${Object.entries(r.params).map(([k, v]) => html`<span class="tag">${k}=${v}</span> `)}</dd>` : null}
    </dl>
    <h2>Inputs</h2>
    <ul>${(r.inputs ?? []).map((i) => html`<li>${i.name}: ${i.ref ?? i.uri} ${i.version ? `(version ${i.version})` : ''} <code>${i.digest.slice(0, 12)}</code></li>`)}</ul>
    <h2>Outputs</h2>
    <ul>${(r.outputs ?? []).map((o) => html`<li>${o.name}: ${o.files.length} file(s)${o.registered ? ` → ${o.registered}` : ''}</li>`)}</ul>
    <h2>run.yaml</h2>
    <pre class="yaml">${text}</pre>
  `;
}

export function messagePage(title: string, message: string): VNode {
  return html`<h1>${title}</h1><p class="error">${message}</p>`;
}

export const STYLE = `
:root { --fg: #1b1f24; --muted: #5b6570; --line: #d8dee4; --accent: #0b6bcb; --bg: #fff; --soft: #f5f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: .7rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--soft); }
header .brand { font-weight: 700; font-size: 1.1rem; color: var(--fg); text-decoration: none; }
header nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; }
header .repo { color: var(--muted); font-family: ui-monospace, monospace; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
main { padding: 1rem 1.5rem 3rem; max-width: 1200px; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; } h1 .type { color: var(--muted); font-weight: 400; } h1 .at { color: var(--muted); }
h2 { font-size: 1.1rem; margin-top: 1.8rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; } td.num { text-align: right; white-space: nowrap; }
a { color: var(--accent); } a.version { display: inline-block; padding: 0 .35rem; border: 1px solid var(--line); border-radius: 4px; text-decoration: none; margin: 0 .15rem .15rem 0; }
a.version.retired { color: var(--muted); text-decoration: line-through; }
a.stage, .tag { display: inline-block; padding: 0 .45rem; border-radius: 10px; background: #e7f1fb; margin: 0 .2rem .2rem 0; text-decoration: none; font-size: .9em; }
.badge { font-size: .7em; padding: .1rem .5rem; border-radius: 10px; background: var(--soft); border: 1px solid var(--line); vertical-align: middle; }
.badge.completed { background: #e6f4ea; } .badge.failed, .badge.cancelled, .badge.retired { background: #fdecea; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; } dl.meta dt { color: var(--muted); }
pre { background: var(--soft); border: 1px solid var(--line); padding: .8rem; overflow: auto; white-space: pre-wrap; word-break: break-word; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.search { margin-bottom: 1rem; } .search input { padding: .35rem .5rem; width: 22rem; max-width: 100%; }
.graph { overflow: auto; border: 1px solid var(--line); background: #fbfcfd; padding: .5rem; }
svg.lineage .node rect { fill: #fff; stroke: #8a96a3; } svg.lineage .node.asset rect { fill: #eef5fd; stroke: var(--accent); }
svg.lineage .node.run rect { fill: #fff7e6; stroke: #c98a00; } svg.lineage .node.commit rect { fill: #f3f3f3; }
svg.lineage .node.root rect { stroke-width: 2.5; } svg.lineage text { font: 12px ui-monospace, monospace; text-anchor: middle; fill: var(--fg); }
svg.lineage .edge path { fill: none; stroke: #8a96a3; stroke-width: 1.2; } svg.lineage .edge text { font-size: 10px; fill: var(--muted); paint-order: stroke; stroke: #fbfcfd; stroke-width: 3px; }
svg.lineage marker path { fill: #8a96a3; } svg.lineage a:hover rect { stroke-width: 2; }
.empty, .note { color: var(--muted); } .error { color: #b42318; }
`;
