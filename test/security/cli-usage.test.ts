import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { describeCommands, type CommandSpec } from '../../src/cli';
import { makeRepoWithRemote, randomBytesSeeded, Sandbox } from '../helpers/sandbox';
import { securityReport } from './lib';

/**
 * Every command, read from the CLI's own definition (a new command is covered without touching this
 * file), run outside a repository, in a bare repository and in a repository, with no arguments, an
 * unknown option and a bad value. None may print "internal error", hang, or, when it reports a usage
 * error (exit 1), change anything on disk.
 */
const LIMIT_MS = 120_000; // a hang, not a slow machine: each case normally ends in well under a second

/** Files under `root` by path, with their content hash; git's index and lock files excluded (git rewrites them when it refreshes stat data). */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !/\/\.git\/index$|\.lock$/.test(p)) out.set(path.relative(root, p), createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
      else if (e.isSymbolicLink()) out.set(path.relative(root, p), `-> ${fs.readlinkSync(p)}`);
    }
  };
  walk(root);
  return out;
}

function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, h] of after) if (before.get(p) !== h) out.push(before.has(p) ? `changed ${p}` : `added ${p}`);
  for (const p of before.keys()) if (!after.has(p)) out.push(`removed ${p}`);
  return out;
}

interface Case {
  where: string;
  cwd: string;
  kind: 'no arguments' | 'unknown option' | 'bad value';
  args: string[];
}

/** Commands that run until stopped when their usage is right. */
const SERVERS = ['ui'];

function casesFor(spec: CommandSpec, where: string, cwd: string): Case[] {
  const bad = (name: string) => (spec.positionalChoices[name] ? 'no-such-choice' : '::bad::');
  const badValue = [spec.name, ...spec.required.map(bad)];
  for (const o of spec.options) {
    if (o.choices) badValue.push(`--${o.name}`, 'no-such-choice');
    else if (o.type === 'number') badValue.push(`--${o.name}`, 'NaN');
    else if (o.required) badValue.push(`--${o.name}`, '::bad::');
  }
  return [
    // A server (gitml ui) given nothing to complain about starts serving: test/e2e/ui.test.ts covers it.
    ...(SERVERS.includes(spec.name) ? [] : [{ where, cwd, kind: 'no arguments' as const, args: [spec.name] }]),
    {
      where,
      cwd,
      kind: 'unknown option',
      args: [spec.name, ...spec.required.map(bad), ...spec.options.filter((o) => o.required).flatMap((o) => [`--${o.name}`, 'x']), '--bogus-option-xyz'],
    },
    { where, cwd, kind: 'bad value', args: badValue },
  ];
}

function run(box: Sandbox, c: Case): Promise<{ code: number | null; stderr: string; timedOut: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('gitml', c.args, { cwd: c.cwd, env: { ...box.env, GITML_RETRIES: '0' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.resume();
    child.stdin.end();
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, LIMIT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, stderr, timedOut: signal === 'SIGKILL', ms: Date.now() - started });
    });
  });
}

describe('security: every command, every place, every kind of bad usage', () => {
  // Each place has its own sandbox (own HOME, own store), so a change is always attributed to the
  // case that made it, while the three places run side by side.
  const places: { where: string; box: Sandbox; cwd: string }[] = [];
  beforeAll(async () => {
    for (const where of ['outside a repository', 'bare repository', 'repository']) {
      const box = await Sandbox.create();
      const { repo, remote } = await makeRepoWithRemote(box);
      await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(50_000, 1));
      await box.git(repo, ['add', 'model.pt']);
      await box.git(repo, ['commit', '-q', '-m', 'model']);
      await box.git(repo, ['push', '-q', 'origin', 'main']);
      const outside = box.path('plain-folder');
      await fsp.mkdir(outside);
      places.push({ where, box, cwd: where === 'repository' ? repo : where === 'bare repository' ? remote : outside });
    }
  });
  afterAll(() => Promise.all(places.map((p) => p.box.cleanup())));

  test('no internal error, no hang, and no side effect on a usage error', async () => {
    const specs = describeCommands();
    expect(specs.length).toBeGreaterThan(20);
    const problems: string[] = [];
    let slowest = 0;
    let total = 0;
    await Promise.all(
      places.map(async (place) => {
        for (const c of specs.flatMap((s) => casesFor(s, place.where, place.cwd))) {
          total++;
          const before = snapshot(place.box.root);
          const r = await run(place.box, c);
          slowest = Math.max(slowest, r.ms);
          const label = `gitml ${c.args.join(' ')} (${c.where}, ${c.kind})`;
          if (r.timedOut) problems.push(`${label}: did not end within ${LIMIT_MS / 1000} s`);
          if (/internal error/i.test(r.stderr)) problems.push(`${label}: internal error: ${r.stderr.trim()}`);
          if (r.code === 1) {
            const changed = changes(before, snapshot(place.box.root));
            if (changed.length > 0) problems.push(`${label}: exit 1 but changed ${changed.slice(0, 5).join(', ')}`);
          }
          if (c.kind === 'unknown option' && r.code !== 1) problems.push(`${label}: exit ${r.code}, expected 1 (usage): ${r.stderr.trim()}`);
          if (c.kind === 'unknown option' && !/unknown option --bogus-option-xyz/.test(r.stderr)) problems.push(`${label}: the message does not name the option: ${r.stderr.trim()}`);
        }
      }),
    );
    securityReport({ case: 'CLI: every command x place x bad usage', cases: total, passed: total - problems.length, seconds: Math.round(slowest / 100) / 10 });
    expect(problems).toEqual([]);
  });
});
