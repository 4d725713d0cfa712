import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readInBlocks, ReadBlocks } from '../src/util/read-blocks';
import { Chunker } from '../src/objects/cdc';
import { formatBytes } from '../src/progress';
import { createMachine, dirBytes, DIST, run, type Machine } from '../scripts/machine';
import { RssWatcher } from '../scripts/rss';
import { w1, w2, w3Versions, w4, w5, w6 } from './workloads';

/**
 * `npm run bench`: the same workloads through gitml and git-lfs (when installed) side by side on this
 * machine, printing time ratios, peak memory and store growth. Not part of `npm test`.
 *
 *   npm run bench -- [--quick] [--workloads W1,W2,W3,W4,W5,W6] [--repeat N] [--keep] [--dir DIR]
 *
 * W1 one 1 GiB file, W2 2,000 × 64 KiB, W3 a checkpoint series (dedup), W4 20,000 files of 4-64 KiB,
 * W5 one 10 GiB file and W6 100,000 files of 4 KiB (each only when named). --quick: smaller sizes and W1,W2,W4, about two minutes.
 * The tools take turns step by step (each step of one, then the same step of the other; who goes first
 * alternates by round), and with --repeat N each step reports its median time (this machine's
 * timings vary by ±30% from run to run). Each add is measured twice: after `sync` and right after
 * the files were written (still dirty in the page cache, as a training job leaves them). --dir: where
 * the bench works (default the system's temp folder); its file system is printed with the figures
 * (on ext4 the small-file steps are held by the file system's allocation stalls, on tmpfs by the
 * tools).
 */
interface Tool {
  name: 'gitml' | 'git-lfs';
  /** What identifies the tool's own processes in /proc/<pid>/cmdline. */
  marker: string;
  install(m: Machine): Promise<void>;
  initRepo(m: Machine, repo: string, store: string): Promise<void>;
  remoteUrl(bare: string): string;
  storeDir(bare: string, store: string): string;
  /** The command that deletes from the store what no ref reaches (git-lfs has none for its remote). */
  storeGc?: string[];
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
  storeGc: ['gitml', 'gc', '--grace', '0'],
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
  const middle = runs && medianBy(runs, (r) => r.seconds);
  if (!runs || !middle) return undefined;
  return {
    ...middle,
    toolPeakMiB: Math.max(...runs.map((r) => r.toolPeakMiB)),
    treePeakMiB: Math.max(...runs.map((r) => r.treePeakMiB)),
  };
}

async function timed(m: Machine, tool: Tool, cwd: string, args: string[], sync = true, program = 'git'): Promise<Measurement> {
  // Every step starts with the page cache written back, so one step's writeback (gigabytes, after a
  // W1 add or push) is not paid inside the next step's time; the same for both tools. The "fresh"
  // add steps skip it on purpose.
  if (sync) spawnSync('sync');
  const watcher = new RssWatcher(tool.marker);
  watcher.start(10);
  const started = process.hrtime.bigint();
  const treeKiB = await new Promise<number>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', program, ...args], { cwd, env: m.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const kib = Number(/maxrss=(\d+)/.exec(err)?.[1] ?? 0);
      if (code === 0) resolve(kib);
      else {
        watcher.stop();
        const failure = new Error(`${program} ${args.join(' ')} failed (${code}): ${err}`) as Error & { partial?: Measurement };
        failure.partial = { seconds: Number(process.hrtime.bigint() - started) / 1e9, toolPeakMiB: watcher.maxMiB(), treePeakMiB: kib / 1024 };
        reject(failure);
      }
    });
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  watcher.stop();
  return { seconds, toolPeakMiB: watcher.maxMiB(), treePeakMiB: treeKiB / 1024 };
}

const NULL_FILTER_COMMAND = "git -c filter.nullfilter.process='node dist/bench/null-filter.js' add -A; git commit";

/**
 * W2 added and committed (after `sync`) through bench/null-filter.ts, in a repository set up as the
 * tools' are: what git itself costs when every file goes through a long-running filter. Seconds.
 */
async function addThroughNullFilter(m: Machine, data: string, files: string[]): Promise<number> {
  const repo = path.join(m.root, 'W2-null-filter-repo');
  await run(m, m.root, 'git', ['init', '-q', repo]);
  await run(m, repo, 'git', ['config', 'filter.nullfilter.process', `node ${path.join(DIST, 'bench', 'null-filter.js')}`]);
  await run(m, repo, 'git', ['config', 'filter.nullfilter.required', 'true']);
  await fsp.writeFile(path.join(repo, '.gitattributes'), '*.pt filter=nullfilter -text\n');
  await run(m, repo, 'git', ['add', '.']);
  await run(m, repo, 'git', ['commit', '-q', '-m', 'setup']);
  await copyInto(data, files, repo);
  const add = await timed(m, gitml, repo, ['add', '-A']);
  const commit = await timed(m, gitml, repo, ['commit', '-q', '-m', 'W2']);
  const stored = await run(m, repo, 'git', ['show', `HEAD:${files[0]!}`]);
  if (!stored.startsWith('version https://git-lfs.github.com/spec/v1')) throw new Error('the null filter did not answer with a pointer');
  return add.seconds + commit.seconds;
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

/** Reads `file` as a push reads a large object (util/read-blocks.ts): reused 1 MiB blocks, one read ahead. */
async function readBlocks(file: string, blocks: ReadBlocks, each: (data: Buffer) => void): Promise<void> {
  const handle = await fsp.open(file, 'r');
  try {
    await readInBlocks(handle, blocks, each);
  } finally {
    await handle.close();
  }
}

/**
 * FastCDC cut points plus a sha256 per chunk, on this thread: what a push does per byte (issue 17:
 * ≥ 1 GiB/s), reading the file as the push does (src/util/read-blocks.ts).
 */
async function chunkingSeconds(file: string): Promise<number> {
  const t = process.hrtime.bigint();
  const chunker = new Chunker();
  // Each chunk is hashed at once: only the input the chunker holds back keeps a block in use.
  await readBlocks(file, new ReadBlocks((memory) => chunker.holds(memory)), (data) => {
    for (const chunk of chunker.push(data)) createHash('sha256').update(chunk).digest();
  });
  for (const chunk of chunker.end()) createHash('sha256').update(chunk).digest();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/**
 * The two halves of chunkingSeconds, each alone and each reading the file the same way: cutting with
 * no hashing, then a sha256 per chunk at the same boundaries with no cutting (and the read alone,
 * which both include). One thread doing both needs about cut + hash - read: this says, per run, how
 * far SHA-256 chunk names let the chunking target be met on this machine.
 */
async function chunkingPartsSeconds(file: string): Promise<{ read: number; cut: number; hash: number }> {
  const lengths: number[] = [];
  let t = process.hrtime.bigint();
  await readBlocks(file, new ReadBlocks(), () => undefined);
  const read = Number(process.hrtime.bigint() - t) / 1e9;
  t = process.hrtime.bigint();
  const chunker = new Chunker();
  await readBlocks(file, new ReadBlocks((memory) => chunker.holds(memory)), (data) => {
    for (const chunk of chunker.push(data)) lengths.push(chunk.length);
  });
  for (const chunk of chunker.end()) lengths.push(chunk.length);
  const cut = Number(process.hrtime.bigint() - t) / 1e9;
  t = process.hrtime.bigint();
  let next = 0;
  let left = lengths[0] ?? 0;
  let hash = createHash('sha256');
  await readBlocks(file, new ReadBlocks(), (data) => {
    for (let at = 0; at < data.length; ) {
      const n = Math.min(left, data.length - at);
      hash.update(data.subarray(at, at + n));
      at += n;
      left -= n;
      if (left === 0) {
        hash.digest();
        hash = createHash('sha256');
        left = lengths[++next] ?? Number.MAX_SAFE_INTEGER;
      }
    }
  });
  return { read, cut, hash: Number(process.hrtime.bigint() - t) / 1e9 };
}

async function sha256Seconds(file: string): Promise<number> {
  const t = process.hrtime.bigint();
  const h = createHash('sha256');
  await readBlocks(file, new ReadBlocks(), (data) => h.update(data));
  h.digest();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/**
 * ext4 keeps inodes deleted in the last dirty-expire interval (30 s by default) from being reused,
 * and creating files right after thousands were deleted scans past them: here 20,000 new files took
 * 11.2 s right after 40,000 were removed, 3.5 s otherwise. So nothing is deleted inside a round, and
 * after each deletion the bench writes everything back and waits out that interval before timing
 * anything again: neither tool pays for the files the bench itself removed.
 */
async function settleAfterDeleting(): Promise<void> {
  spawnSync('sync');
  const centis = Number(await fsp.readFile('/proc/sys/vm/dirty_expire_centisecs', 'utf8').catch(() => '3000')) || 3000;
  await new Promise((resolve) => setTimeout(resolve, centis * 10 + 5000));
  spawnSync('sync');
}

/** `cp -r` of the workload's bytes into an empty directory on the same disk, then `sync`: the copy limit a push to a directory store is held against. */
async function copyBaseline(data: string, dirs: string[], into: string): Promise<{ cp: number; cpSync: number }> {
  await fsp.mkdir(into, { recursive: true });
  spawnSync('sync');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('cp', ['-r', ...dirs.map((d) => path.join(data, d)), into]);
  if (r.status !== 0) throw new Error(`cp failed: ${r.stderr.toString()}`);
  const cp = Number(process.hrtime.bigint() - t0) / 1e9;
  spawnSync('sync');
  const cpSync = Number(process.hrtime.bigint() - t0) / 1e9;
  await fsp.rm(into, { recursive: true, force: true });
  return { cp, cpSync };
}

interface Sizes {
  w1: number;
  w2Count: number;
  w2Size: number;
  w3: number;
  w4Count: number;
  w5: number;
  w6Count: number;
}

const FULL: Sizes = { w1: 1 << 30, w2Count: 2000, w2Size: 64 << 10, w3: 256 << 20, w4Count: 20_000, w5: 10 * (1 << 30), w6Count: 100_000 };
const QUICK: Sizes = { w1: 256 << 20, w2Count: 500, w2Size: 64 << 10, w3: 64 << 20, w4Count: 2_000, w5: 2 * (1 << 30), w6Count: 10_000 };

/** The command each step runs, printed beside its figure. */
const COMMANDS: Record<string, string> = {
  'add+commit (synced)': 'sync; git add -A; git commit',
  'add+commit (fresh)': 'cp (no sync); git add -A; git commit',
  push: 'git push -q origin main',
  clone: 'git clone -q <remote> <dir>',
  'status after clone': 'git status --porcelain',
  'store gc (v4 only reachable)': gitml.storeGc!.join(' '),
};

/** The file system a folder is on, by its statfs magic number (the ones this bench meets). */
function fileSystemOf(dir: string): string {
  const type = fs.statfsSync(dir).type;
  const known: Record<number, string> = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x6969: 'nfs', 0x794c7630: 'overlayfs' };
  return known[type] ?? `file system 0x${type.toString(16)}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const keep = argv.includes('--keep');
  const rIdx = argv.indexOf('--repeat');
  const repeat = rIdx >= 0 ? Math.max(1, Number(argv[rIdx + 1]) || 1) : 1;
  const wIdx = argv.indexOf('--workloads');
  // W5 (10 GiB) and W6 (100,000 files) only when asked for: ~60 GiB of disk, or several minutes a
  // tool (git-lfs's add and clone of 100,000 files).
  const workloads = new Set((wIdx >= 0 ? argv[wIdx + 1]! : quick ? 'W1,W2,W4' : 'W1,W2,W3,W4').split(',').map((s) => s.trim().toUpperCase()));
  const sizes = quick ? QUICK : FULL;
  const dIdx = argv.indexOf('--dir');
  const parent = dIdx >= 0 ? path.resolve(argv[dIdx + 1] ?? '') : os.tmpdir();
  if (!(await fsp.stat(parent).catch(() => null))?.isDirectory()) {
    console.error(`bench: --dir ${argv[dIdx + 1] ?? ''}: not a directory`);
    process.exitCode = 2;
    return;
  }
  const fileSystem = fileSystemOf(parent);

  const tools: Tool[] = [gitml];
  if (await hasGitLfs()) tools.push(gitLfs);
  else console.log('git-lfs is not installed (apt-get install git-lfs): measuring gitml alone.');

  const root = await fsp.mkdtemp(path.join(parent, 'gitml-bench-'));
  const rows: Row[] = [];
  const notes: string[] = [];
  const w3Gc: W3Gc[] = [];
  const record = (workload: string, step: string, tool: Tool, m: Result) => {
    let row = rows.find((r) => r.workload === workload && r.step === step);
    if (!row) rows.push((row = { workload, step, runs: {} }));
    (row.runs[tool.name] ??= []).push(m);
    const rss = `ours ${m.toolPeakMiB.toFixed(0)} MiB, tree ${m.treePeakMiB.toFixed(0)} MiB`;
    console.log(`  ${tool.name.padEnd(8)} ${workload} ${step.padEnd(20)} ${m.seconds.toFixed(2).padStart(7)} s  (${rss})${m.storeBytes !== undefined ? `  store +${formatBytes(m.storeBytes)}` : ''}   [${COMMANDS[step] ?? step}]`);
  };
  console.log(`gitml bench in ${root} on ${fileSystem} (${quick ? 'quick' : 'full'} sizes; workloads ${[...workloads].join(',')}; ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'cpu'}; ${process.argv.slice(1).join(' ')})`);
  try {
    const data = path.join(root, 'data');
    const files: Record<string, string[]> = {};
    if (workloads.has('W1')) files.W1 = await w1(data, sizes.w1);
    if (workloads.has('W2')) files.W2 = await w2(data, sizes.w2Count, sizes.w2Size);
    if (workloads.has('W4')) files.W4 = await w4(data, sizes.w4Count);
    if (workloads.has('W5')) files.W5 = await w5(data, sizes.w5);
    if (workloads.has('W6')) files.W6 = await w6(data, sizes.w6Count);
    let hashSeconds: number | null = null;
    let chunkSeconds: number | null = null;
    let chunkParts: { read: number; cut: number; hash: number } | null = null;
    const nullFilterAdds: number[] = [];
    if (files.W1) {
      await sha256Seconds(path.join(data, files.W1[0]!)); // warm the page cache, as git add will find it
      hashSeconds = await sha256Seconds(path.join(data, files.W1[0]!));
      console.log(`  baseline: sha256 of W1 (${formatBytes(sizes.w1)}) in node: ${hashSeconds.toFixed(2)} s`);
      chunkSeconds = await chunkingSeconds(path.join(data, files.W1[0]!));
      console.log(`  baseline: FastCDC + sha256 per chunk of W1, one thread: ${chunkSeconds.toFixed(2)} s = ${(sizes.w1 / 2 ** 20 / chunkSeconds).toFixed(0)} MiB/s`);
      chunkParts = await chunkingPartsSeconds(path.join(data, files.W1[0]!));
      const rate = (s: number) => (sizes.w1 / 2 ** 20 / s).toFixed(0);
      console.log(`  baseline: of that, cutting alone ${rate(chunkParts.cut)} MiB/s, sha256 per chunk alone ${rate(chunkParts.hash)} MiB/s (each reading the file, ${rate(chunkParts.read)} MiB/s alone): both on one thread, about ${rate(chunkParts.cut + chunkParts.hash - chunkParts.read)} MiB/s`);
    }
    const copyDirs = ['w1', 'w2'].filter((d) => files[d.toUpperCase()]);
    const copies: { cp: number; cpSync: number }[] = [];
    for (let i = 0; i < repeat && copyDirs.length; i++) copies.push(await copyBaseline(data, copyDirs, path.join(root, 'copy-baseline')));
    if (copies.length) await settleAfterDeleting();
    const copy = copies.length ? { cp: median(copies.map((c) => c.cp)), cpSync: median(copies.map((c) => c.cpSync)) } : null;
    if (copy) console.log(`  baseline: cp -r of ${copyDirs.join('+')} on the same disk: ${copy.cp.toFixed(2)} s, with sync ${copy.cpSync.toFixed(2)} s   [sync; cp -r ${copyDirs.join(' ')} <dir>; sync]`);

    /**
     * One tool's round as steps: the generator stops after each measured step, so the driver below
     * can run the two tools' same steps back to back.
     */
    async function* roundOf(m: Machine, tool: Tool): AsyncGenerator<void> {
      for (const w of ['W1', 'W2', 'W4', 'W5', 'W6'] as const) {
        if (!files[w]) continue;
        // Added fresh: the files were just written (by training, here by cp) and are still dirty in
        // the page cache, as a user's are. Not for W5 (twice 10 GiB of disk) nor W6 (its time).
        if (w !== 'W5' && w !== 'W6') {
          const fresh = await setUpRepo(m, tool, `${w}-fresh`);
          spawnSync('sync');
          await copyInto(data, files[w]!, fresh.repo);
          const add = await timed(m, tool, fresh.repo, ['add', '-A'], false);
          const commit = await timed(m, tool, fresh.repo, ['commit', '-q', '-m', w]);
          record(w, 'add+commit (fresh)', tool, combine(add, commit));
          yield;
        }
        const { repo, bare, store } = await setUpRepo(m, tool, w);
        await copyInto(data, files[w]!, repo);
        const add = await timed(m, tool, repo, ['add', '-A']);
        const commit = await timed(m, tool, repo, ['commit', '-q', '-m', w]);
        record(w, 'add+commit (synced)', tool, combine(add, commit));
        if (w === 'W2' && tool.name === 'gitml') {
          nullFilterAdds.push(await addThroughNullFilter(m, data, files[w]!));
          console.log(`  baseline W2 add+commit (synced) through a filter that stores nothing: ${nullFilterAdds[nullFilterAdds.length - 1]!.toFixed(2)} s   [${NULL_FILTER_COMMAND}]`);
        }
        yield;
        await run(m, repo, 'git', ['remote', 'add', 'origin', tool.remoteUrl(bare)]);
        let push: Measurement;
        try {
          push = await timed(m, tool, repo, ['push', '-q', 'origin', 'main']);
        } catch (e) {
          // git-lfs 3.3 fails the first push of many new objects to a file remote part way
          // (docs/performance.md); a user runs it again: both attempts count.
          const first = (e as { partial?: Measurement }).partial;
          if (!first) throw e;
          const again = await timed(m, tool, repo, ['push', '-q', 'origin', 'main']);
          push = combine(first, again);
          notes.push(`${tool.name} ${w} push failed the first time (${(e as Error).message.split('\n')[0]!.slice(0, 160)}); the figure is both attempts.`);
        }
        record(w, 'push', tool, { ...push, storeBytes: (await dirBytes(tool.storeDir(bare, store))).bytes });
        yield;
        const cloneDir = path.join(m.root, `${w}-clone`);
        const clone = await timed(m, tool, m.root, ['clone', '-q', tool.remoteUrl(bare), cloneDir]);
        record(w, 'clone', tool, clone);
        yield;
        if (w === 'W4' || w === 'W6') {
          record(w, 'status after clone', tool, await timed(m, tool, cloneDir, ['status', '--porcelain']));
          yield;
        }
        if (w === 'W5' || w === 'W6') {
          // 10 GiB, or 100,000 files, several times over: removed at once, then the file system settles.
          for (const dir of [cloneDir, repo, store, bare]) await fsp.rm(dir, { recursive: true, force: true });
          await settleAfterDeleting();
        }
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
          record('W3', `v${v} add+push`, tool, { ...combine(add, push), storeBytes: after - before });
          before = after;
          yield;
        }
        // History rewritten so that only v4 is reachable, then the store's own gc (issue 15).
        await run(m, repo, 'git', ['checkout', '-q', '--orphan', 'v4-only']);
        await run(m, repo, 'git', ['commit', '-q', '-m', 'v4 only']);
        await run(m, repo, 'git', ['branch', '-q', '-D', 'main']);
        await run(m, repo, 'git', ['branch', '-q', '-m', 'main']);
        await run(m, repo, 'git', ['push', '-q', '--force', 'origin', 'main']);
        await run(m, bare, 'git', ['gc', '-q', '--prune=now']);
        const v4Bytes = (await fsp.stat(path.join(repo, 'checkpoint.pt'))).size;
        const storeBefore = (await dirBytes(tool.storeDir(bare, store))).bytes;
        let gc: W3Gc['gc'] = null;
        if (tool.storeGc) {
          const [program, ...args] = tool.storeGc;
          const measured = await timed(m, tool, repo, args, true, program);
          gc = { command: tool.storeGc.join(' '), seconds: measured.seconds };
          record('W3', 'store gc (v4 only reachable)', tool, measured);
        }
        const storeAfter = (await dirBytes(tool.storeDir(bare, store))).bytes;
        w3Gc.push({ tool: tool.name, v4Bytes, storeBefore, storeAfter, gc });
        console.log(`  ${tool.name.padEnd(8)} W3 after rewrite to v4 only: store ${formatBytes(storeBefore)} -> ${formatBytes(storeAfter)} (v4 is ${formatBytes(v4Bytes)})${tool.storeGc ? `   [${tool.storeGc.join(' ')}]` : '   [no store gc]'}`);
      }
    }

    // The tools take turns step by step (gitml's W1 push, then git-lfs's W1 push, ...), and which tool
    // goes first alternates by round: a slow patch of the machine, or the aftermath of the step just
    // before (a push that wrote a gigabyte against one that made hard links), falls on both alike.
    for (let rep = 0; rep < repeat; rep++) {
      if (repeat > 1) console.log(`  round ${rep + 1} of ${repeat}`);
      const order = rep % 2 === 0 ? tools : [...tools].reverse();
      const live: { m: Machine; steps: AsyncGenerator<void> }[] = [];
      for (const tool of order) {
        // Directory names must not contain a tool's marker, or git's own processes would match it.
        const m = await createMachine(root, `${tool.name === 'gitml' ? 'machine-a' : 'machine-b'}${rep}`);
        // No background gc or maintenance after a 20,000-file commit: it would run inside the next
        // step's time (and write into folders the bench removes). The same for both tools.
        await run(m, m.root, 'git', ['config', '--global', 'gc.auto', '0']);
        await run(m, m.root, 'git', ['config', '--global', 'maintenance.auto', 'false']);
        await tool.install(m);
        live.push({ m, steps: roundOf(m, tool) });
      }
      for (let running = live; running.length > 0; ) {
        const next: typeof live = [];
        for (const r of running) if (!(await r.steps.next()).done) next.push(r);
        running = next;
      }
      // A round leaves gigabytes of stores behind; the next round starts from nothing anyway.
      if (!keep) {
        for (const { m } of live) await fsp.rm(m.root, { recursive: true, force: true });
        await settleAfterDeleting();
      }
    }

    if (repeat > 1) console.log(`\nmedian of ${repeat} rounds; peak memory: the highest of any round`);
    console.log(`\ncommand: npm run bench -- ${process.argv.slice(2).join(' ')}`);
    console.log('\n| workload | step | command | gitml s | git-lfs s | gitml / git-lfs | gitml peak RSS (ours / whole tree) | git-lfs peak RSS (its own / whole tree) | store growth gitml / git-lfs |');
    console.log('| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- |');
    for (const r of rows) {
      const g = summarize(r.runs.gitml);
      const l = summarize(r.runs['git-lfs']);
      const ratio = g && l ? (g.seconds / l.seconds).toFixed(2) : '–';
      const rss = (x?: Measurement) => (x ? `${x.toolPeakMiB.toFixed(0)} / ${x.treePeakMiB.toFixed(0)} MiB` : '–');
      const store = g?.storeBytes !== undefined ? `${formatBytes(g.storeBytes)} / ${l?.storeBytes !== undefined ? formatBytes(l.storeBytes) : '–'}` : '';
      console.log(`| ${r.workload} | ${r.step} | \`${COMMANDS[r.step] ?? 'git add -A; git commit; git push'}\` | ${g?.seconds.toFixed(2) ?? '–'} | ${l?.seconds.toFixed(2) ?? '–'} | ${ratio} | ${rss(g)} | ${rss(l)} | ${store} |`);
    }
    for (const line of w3GcLines(w3Gc)) console.log(line);
    for (const n of notes) console.log(`\nnote: ${n}`);
    const nullFilterAdd = nullFilterAdds.length ? median(nullFilterAdds) : null;
    if (nullFilterAdd !== null) {
      const lfs = summarize(rows.find((r) => r.workload === 'W2' && r.step === 'add+commit (synced)')?.runs['git-lfs'])?.seconds;
      console.log(`\nW2 add+commit (synced) through a filter that hashes and answers a pointer and stores nothing (bench/null-filter.ts): ${nullFilterAdd.toFixed(2)} s (rounds ${nullFilterAdds.map((x) => x.toFixed(2)).join(', ')})${lfs ? `, ${(nullFilterAdd / lfs).toFixed(2)} × git-lfs's` : ''}: git's own share of adding these files through any filter   [${NULL_FILTER_COMMAND}]`);
    }
    const targets = targetLines(rows, copy, hashSeconds, chunkSeconds === null ? null : sizes.w1 / chunkSeconds, nullFilterAdd);
    if (targets.length) {
      console.log('\n| target (issue 17) | measured | |\n| --- | --- | --- |');
      for (const t of targets) console.log(t);
    }
    const out = path.join(DIST, '..', 'bench', 'results');
    await fsp.mkdir(out, { recursive: true });
    const file = path.join(out, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await fsp.writeFile(file, JSON.stringify({ date: new Date().toISOString(), argv: process.argv.slice(2), fileSystem, quick, repeat, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, hashSeconds, chunkSeconds, chunkParts, copy, nullFilterAdds, rows, w3Gc, notes }, null, 2));
    console.log(`\nraw results: ${file}`);
  } finally {
    if (keep) console.log(`(kept ${root})`);
    else await fsp.rm(root, { recursive: true, force: true });
  }
}

function combine(a: Measurement, b: Measurement): Measurement {
  return { seconds: a.seconds + b.seconds, toolPeakMiB: Math.max(a.toolPeakMiB, b.toolPeakMiB), treePeakMiB: Math.max(a.treePeakMiB, b.treePeakMiB) };
}

/** The item in the middle by `key` (the lower of the two middles for an even count). Pure. */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor((items.length - 1) / 2)];
}

function median(xs: number[]): number {
  return medianBy(xs, (x) => x)!;
}

interface W3Gc {
  tool: Tool['name'];
  v4Bytes: number;
  storeBefore: number;
  storeAfter: number;
  /** The tool's store gc and how long it took; null for a tool without one. */
  gc: { command: string; seconds: number } | null;
}

/** The W3 store after a history rewrite to v4 alone, each tool's median round. Pure. */
export function w3GcLines(results: readonly W3Gc[]): string[] {
  const lines: string[] = [];
  for (const name of ['gitml', 'git-lfs'] as const) {
    const r = medianBy(results.filter((x) => x.tool === name), (x) => x.storeAfter);
    if (!r) continue;
    const how = r.gc === null ? 'no store gc' : `\`${r.gc.command}\` in ${r.gc.seconds.toFixed(2)} s`;
    lines.push(`W3, history rewritten to v4 only, ${name}: store ${formatBytes(r.storeBefore)} -> ${formatBytes(r.storeAfter)} (${how}); v4 is ${formatBytes(r.v4Bytes)}, the store holds ${(r.storeAfter / r.v4Bytes).toFixed(3)} × that`);
  }
  return lines.length ? ['', ...lines] : [];
}

/** Each target of issue 17 that this run measured, met or missed. Pure. */
export function targetLines(
  rows: readonly Row[],
  copy: { cp: number; cpSync: number } | null,
  hashSeconds: number | null,
  chunkBytesPerSecond: number | null = null,
  nullFilterAdd: number | null = null,
): string[] {
  const get = (w: string, step: string, tool: Tool['name']) => summarize(rows.find((r) => r.workload === w && r.step === step)?.runs[tool])?.seconds;
  const lines: string[] = [];
  const ratio = (w: string, step: string, target: number, label: string, floor?: number | null) => {
    const g = get(w, step, 'gitml');
    const l = get(w, step, 'git-lfs');
    if (g === undefined || l === undefined) return;
    const least = floor ? `; a filter that stores nothing: ${(floor / l).toFixed(2)} ×` : '';
    lines.push(`| ${label} ≤ ${target} × git-lfs | ${(g / l).toFixed(2)} × (${g.toFixed(2)} / ${l.toFixed(2)} s${least}) | ${g / l <= target ? 'met' : 'missed'} |`);
  };
  ratio('W1', 'add+commit (synced)', 0.35, 'W1 add+commit, synced');
  ratio('W1', 'add+commit (fresh)', 0.35, 'W1 add+commit, fresh');
  ratio('W2', 'add+commit (synced)', 0.6, 'W2 add+commit, synced', nullFilterAdd);
  ratio('W2', 'add+commit (fresh)', 0.6, 'W2 add+commit, fresh');
  ratio('W4', 'add+commit (synced)', 1, 'W4 add+commit, synced');
  ratio('W4', 'push', 0.5, 'W4 push');
  ratio('W4', 'clone', 0.7, 'W4 clone');
  const sum = (step: string, tool: Tool['name']) => {
    const a = get('W1', step, tool);
    const b = get('W2', step, tool);
    return a === undefined || b === undefined ? undefined : a + b;
  };
  const gc = sum('clone', 'gitml');
  const lc = sum('clone', 'git-lfs');
  if (gc !== undefined && lc !== undefined) lines.push(`| W1+W2 clone ≤ 0.5 × git-lfs | ${(gc / lc).toFixed(2)} × (${gc.toFixed(2)} / ${lc.toFixed(2)} s) | ${gc / lc <= 0.5 ? 'met' : 'missed'} |`);
  const gp = sum('push', 'gitml');
  if (gp !== undefined && copy) lines.push(`| W1+W2 push to a directory store ≤ 3 × cp | ${(gp / copy.cp).toFixed(2)} × cp (${gp.toFixed(2)} s; cp ${copy.cp.toFixed(2)} s, cp+sync ${copy.cpSync.toFixed(2)} s: ${(gp / copy.cpSync).toFixed(2)} ×) | ${gp / copy.cp <= 3 ? 'met' : 'missed'} |`);
  const w1add = get('W1', 'add+commit (synced)', 'gitml');
  if (chunkBytesPerSecond !== null) lines.push(`| chunking + chunk hashing ≥ 1 GiB/s on one core | ${(chunkBytesPerSecond / 2 ** 20).toFixed(0)} MiB/s | ${chunkBytesPerSecond >= 2 ** 30 ? 'met' : 'missed'} |`);
  if (w1add !== undefined && hashSeconds) lines.push(`| W1 add+commit against sha256 alone | ${(w1add / hashSeconds).toFixed(2)} × (${hashSeconds.toFixed(2)} s to hash) | |`);
  return lines;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
