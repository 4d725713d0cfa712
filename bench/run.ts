import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatBytes } from '../src/progress';
import { createMachine, dirBytes, DIST, run, type Machine } from '../scripts/machine';
import { RssWatcher } from '../scripts/rss';
import { w1, w2, w3Versions } from './workloads';

/**
 * `npm run bench`: the same workloads through gitml and git-lfs (when installed) side by side on this
 * machine, printing time ratios, peak memory and store growth. Not part of `npm test`.
 *
 *   npm run bench -- [--quick] [--workloads W1,W2,W3] [--repeat N] [--keep]
 *
 * With --repeat, the tools take turns N times and each step reports its median time (this machine's
 * timings vary by ±30% from run to run).
 */
interface Tool {
  name: 'gitml' | 'git-lfs';
  /** What identifies the tool's own processes in /proc/<pid>/cmdline. */
  marker: string;
  install(m: Machine): Promise<void>;
  initRepo(m: Machine, repo: string, store: string): Promise<void>;
  remoteUrl(bare: string): string;
  storeDir(bare: string, store: string): string;
}

const gitml: Tool = {
  name: 'gitml',
  marker: DIST,
  install: async (m) => void (await run(m, m.root, 'gitml', ['install'])),
  initRepo: async (m, repo, store) => {
    await run(m, repo, 'gitml', ['track', '*.pt']);
    await run(m, repo, 'git', ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${store}`]);
  },
  remoteUrl: (bare) => `gitml::${bare}`,
  storeDir: (_bare, store) => store, // objects/, packs/ and manifests/ (its tmp/ is empty between pushes)
};

const gitLfs: Tool = {
  name: 'git-lfs',
  marker: 'git-lfs',
  install: async (m) => void (await run(m, m.root, 'git', ['lfs', 'install'])),
  initRepo: async (m, repo) => void (await run(m, repo, 'git', ['lfs', 'track', '*.pt'])),
  remoteUrl: (bare) => `file://${bare}`,
  storeDir: (bare) => path.join(bare, 'lfs', 'objects'),
};

interface Measurement {
  seconds: number;
  /** Peak RSS of the tool's own processes (not git's), MiB. */
  toolPeakMiB: number;
  /** Peak RSS of the largest process in the whole command tree, git included, MiB. */
  treePeakMiB: number;
}

type Result = Measurement & { storeBytes?: number };

interface Row {
  workload: string;
  step: string;
  /** One result per repetition. */
  runs: Partial<Record<Tool['name'], Result[]>>;
}

/** The repetition with the median time, with the highest memory peaks seen in any. Pure. */
export function summarize(runs: readonly Result[] | undefined): Result | undefined {
  if (!runs || runs.length === 0) return undefined;
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return {
    ...median,
    toolPeakMiB: Math.max(...runs.map((r) => r.toolPeakMiB)),
    treePeakMiB: Math.max(...runs.map((r) => r.treePeakMiB)),
  };
}

async function timed(m: Machine, tool: Tool, cwd: string, args: string[]): Promise<Measurement> {
  // Every step starts with the page cache written back, so one step's writeback (gigabytes, after a
  // W1 add or push) is not paid inside the next step's time; the same for both tools.
  spawnSync('sync');
  const watcher = new RssWatcher(tool.marker);
  watcher.start(10);
  const started = process.hrtime.bigint();
  const treeKiB = await new Promise<number>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', 'git', ...args], { cwd, env: m.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const kib = Number(/maxrss=(\d+)/.exec(err)?.[1] ?? 0);
      if (code === 0) resolve(kib);
      else reject(new Error(`git ${args.join(' ')} failed (${code}): ${err}`));
    });
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  watcher.stop();
  return { seconds, toolPeakMiB: watcher.maxMiB(), treePeakMiB: treeKiB / 1024 };
}

/** A repository set up for `tool` with its own store and an empty bare remote, one commit in. */
async function setUpRepo(m: Machine, tool: Tool, workload: string): Promise<{ repo: string; bare: string; store: string }> {
  const repo = path.join(m.root, `${workload}-repo`);
  const bare = path.join(m.root, `${workload}-remote.git`);
  const store = path.join(m.root, `${workload}-store`);
  await fsp.mkdir(store);
  await run(m, m.root, 'git', ['init', '-q', repo]);
  await run(m, m.root, 'git', ['init', '-q', '--bare', bare]);
  await tool.initRepo(m, repo, store);
  await run(m, repo, 'git', ['add', '.']);
  await run(m, repo, 'git', ['commit', '-q', '-m', 'setup']);
  return { repo, bare, store };
}

async function hasGitLfs(): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn('git', ['lfs', 'version'], { stdio: 'ignore' });
    c.on('error', () => resolve(false));
    c.on('close', (code) => resolve(code === 0));
  });
}

async function copyInto(src: string, names: string[], repo: string): Promise<void> {
  for (const n of names) {
    await fsp.mkdir(path.dirname(path.join(repo, n)), { recursive: true });
    await fsp.copyFile(path.join(src, n), path.join(repo, n));
  }
}

async function sha256Seconds(file: string): Promise<number> {
  const t = process.hrtime.bigint();
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  h.digest();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const keep = argv.includes('--keep');
  const rIdx = argv.indexOf('--repeat');
  const repeat = rIdx >= 0 ? Math.max(1, Number(argv[rIdx + 1]) || 1) : 1;
  const wIdx = argv.indexOf('--workloads');
  const workloads = new Set((wIdx >= 0 ? argv[wIdx + 1]! : 'W1,W2,W3').split(',').map((s) => s.trim().toUpperCase()));
  const sizes = quick ? { w1: 256 << 20, w2Count: 500, w2Size: 64 << 10, w3: 64 << 20 } : { w1: 1 << 30, w2Count: 2000, w2Size: 64 << 10, w3: 256 << 20 };

  const tools: Tool[] = [gitml];
  if (await hasGitLfs()) tools.push(gitLfs);
  else console.log('git-lfs is not installed (apt-get install git-lfs): measuring gitml alone.');

  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-bench-'));
  const rows: Row[] = [];
  const record = (workload: string, step: string, tool: Tool, m: Result) => {
    let row = rows.find((r) => r.workload === workload && r.step === step);
    if (!row) rows.push((row = { workload, step, runs: {} }));
    (row.runs[tool.name] ??= []).push(m);
    const rss = `ours ${m.toolPeakMiB.toFixed(0)} MiB, tree ${m.treePeakMiB.toFixed(0)} MiB`;
    console.log(`  ${tool.name.padEnd(8)} ${workload} ${step.padEnd(13)} ${m.seconds.toFixed(2).padStart(7)} s  (${rss})${m.storeBytes !== undefined ? `  store +${formatBytes(m.storeBytes)}` : ''}`);
  };
  console.log(`gitml bench in ${root} (${quick ? 'quick' : 'full'} sizes; ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'cpu'})`);
  try {
    const data = path.join(root, 'data');
    const files: Record<string, string[]> = {};
    if (workloads.has('W1')) files.W1 = await w1(data, sizes.w1);
    if (workloads.has('W2')) files.W2 = await w2(data, sizes.w2Count, sizes.w2Size);
    let hashSeconds: number | null = null;
    if (files.W1) {
      await sha256Seconds(path.join(data, files.W1[0]!)); // warm the page cache, as git add will find it
      hashSeconds = await sha256Seconds(path.join(data, files.W1[0]!));
      console.log(`  baseline: sha256 of W1 (${formatBytes(sizes.w1)}) in node: ${hashSeconds.toFixed(2)} s`);
    }

    // The tools take turns, round after round, so a slow patch of the machine hits both.
    const turns = Array.from({ length: repeat }, (_, rep) => tools.map((tool) => ({ rep, tool }))).flat();
    for (const { rep, tool } of turns) {
      if (repeat > 1) console.log(`  round ${rep + 1} of ${repeat}: ${tool.name}`);
      // Directory names must not contain a tool's marker, or git's own processes would match it.
      const m = await createMachine(root, `${tool.name === 'gitml' ? 'machine-a' : 'machine-b'}${rep}`);
      await tool.install(m);
      for (const w of ['W1', 'W2'] as const) {
        if (!files[w]) continue;
        const { repo, bare, store } = await setUpRepo(m, tool, w);
        await copyInto(data, files[w]!, repo);
        const add = await timed(m, tool, repo, ['add', '-A']);
        const commit = await timed(m, tool, repo, ['commit', '-q', '-m', w]);
        record(w, 'add+commit', tool, {
          seconds: add.seconds + commit.seconds,
          toolPeakMiB: Math.max(add.toolPeakMiB, commit.toolPeakMiB),
          treePeakMiB: Math.max(add.treePeakMiB, commit.treePeakMiB),
        });
        await run(m, repo, 'git', ['remote', 'add', 'origin', tool.remoteUrl(bare)]);
        const push = await timed(m, tool, repo, ['push', '-q', 'origin', 'main']);
        record(w, 'push', tool, { ...push, storeBytes: (await dirBytes(tool.storeDir(bare, store))).bytes });
        const clone = await timed(m, tool, m.root, ['clone', '-q', tool.remoteUrl(bare), path.join(m.root, `${w}-clone`)]);
        record(w, 'clone', tool, clone);
        await fsp.rm(path.join(m.root, `${w}-clone`), { recursive: true, force: true });
        await fsp.rm(repo, { recursive: true, force: true });
      }
      if (workloads.has('W3')) {
        const { repo, bare, store } = await setUpRepo(m, tool, 'W3');
        await run(m, repo, 'git', ['remote', 'add', 'origin', tool.remoteUrl(bare)]);
        const write = w3Versions(sizes.w3);
        let before = 0;
        for (let v = 1; v <= 4; v++) {
          await write(v, path.join(repo, 'checkpoint.pt'));
          const add = await timed(m, tool, repo, ['add', '-A']);
          await run(m, repo, 'git', ['commit', '-q', '-m', `v${v}`]);
          const push = await timed(m, tool, repo, ['push', '-q', 'origin', 'main']);
          const after = (await dirBytes(tool.storeDir(bare, store))).bytes;
          record('W3', `v${v} add+push`, tool, {
            seconds: add.seconds + push.seconds,
            toolPeakMiB: Math.max(add.toolPeakMiB, push.toolPeakMiB),
            treePeakMiB: Math.max(add.treePeakMiB, push.treePeakMiB),
            storeBytes: after - before,
          });
          before = after;
        }
      }
      // A round leaves gigabytes of stores behind; the next round starts from nothing anyway.
      if (!keep) await fsp.rm(m.root, { recursive: true, force: true });
    }

    if (repeat > 1) console.log(`\nmedian of ${repeat} rounds; peak memory: the highest of any round`);
    console.log('\n| workload | step | gitml s | git-lfs s | ratio | gitml peak RSS (ours / whole tree) | git-lfs peak RSS (its own / whole tree) | store growth gitml / git-lfs |');
    console.log('| --- | --- | ---: | ---: | ---: | --- | --- | --- |');
    for (const r of rows) {
      const g = summarize(r.runs.gitml);
      const l = summarize(r.runs['git-lfs']);
      const ratio = g && l ? (g.seconds / l.seconds).toFixed(2) : '–';
      const rss = (x?: Measurement) => (x ? `${x.toolPeakMiB.toFixed(0)} / ${x.treePeakMiB.toFixed(0)} MiB` : '–');
      const store = g?.storeBytes !== undefined ? `${formatBytes(g.storeBytes)} / ${l?.storeBytes !== undefined ? formatBytes(l.storeBytes) : '–'}` : '';
      console.log(`| ${r.workload} | ${r.step} | ${g?.seconds.toFixed(2) ?? '–'} | ${l?.seconds.toFixed(2) ?? '–'} | ${ratio} | ${rss(g)} | ${rss(l)} | ${store} |`);
    }
    if (hashSeconds !== null) {
      const add = summarize(rows.find((r) => r.workload === 'W1' && r.step === 'add+commit')?.runs.gitml);
      if (add) console.log(`\nW1 add+commit / sha256 alone: ${(add.seconds / hashSeconds).toFixed(2)} × (${hashSeconds.toFixed(2)} s to hash)`);
    }
    const out = path.join(DIST, '..', 'bench', 'results');
    await fsp.mkdir(out, { recursive: true });
    const file = path.join(out, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await fsp.writeFile(file, JSON.stringify({ date: new Date().toISOString(), quick, repeat, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, hashSeconds, rows }, null, 2));
    console.log(`\nraw results: ${file}`);
  } finally {
    if (keep) console.log(`(kept ${root})`);
    else await fsp.rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
