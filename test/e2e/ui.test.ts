import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import fsp from 'node:fs/promises';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { makeAssetRepo, randomBytesSeeded, Sandbox } from '../helpers/sandbox';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const SHOTS = path.resolve(__dirname, '..', '..', 'test-results');
const HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';

/**
 * gitml ui in a real browser (Debian's Chromium, driven by puppeteer-core): every page loads, the
 * lineage graph has the right nodes and edges and its nodes link to their assets, a hostile
 * description is shown as text and runs nothing, and the server refuses anything but reading.
 * Screenshots go to test-results/.
 */
describe('gitml ui in a real browser', () => {
  let box: Sandbox;
  let repo: string;
  let remote: string;
  let browser: Browser;
  const servers: ChildProcess[] = [];

  /** Starts `gitml ui` and resolves to the address it prints. */
  async function startUi(cwd: string, args: string[] = []): Promise<string> {
    const child = spawn('gitml', ['ui', ...args], { cwd, env: box.env, stdio: ['ignore', 'pipe', 'pipe'] });
    servers.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      child.on('exit', (code) => reject(new Error(`gitml ui exited ${code}: ${out}`)));
    });
  }

  async function open(url: string, shot: string): Promise<Page> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const response = await page.goto(url, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    await fsp.mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `ui-${shot}.png`), fullPage: true });
    return page;
  }

  beforeAll(async () => {
    if (!CHROMIUM) throw new Error('Chromium is not installed (.ci/run installs Debian\'s chromium)');
    box = await Sandbox.create();
    ({ repo, remote } = await makeAssetRepo(box));
    await box.git(repo, ['push', '-q', '-u', 'origin', 'main']);
    const inputs = box.path('inputs');
    await fsp.mkdir(path.join(inputs, 'digits'), { recursive: true });
    await fsp.writeFile(path.join(inputs, 'digits', 'train.csv'), 'pixels,label\n1,2\n');
    await fsp.writeFile(path.join(inputs, 'conda.yaml'), 'dependencies: [python]\n');
    await fsp.writeFile(path.join(inputs, 'model.pt'), randomBytesSeeded(200_000, 1));
    await fsp.writeFile(path.join(inputs, 'model2.pt'), randomBytesSeeded(210_000, 2));
    const ok = async (args: string[]) => {
      const r = await box.gitml(repo, args);
      if (r.code !== 0) throw new Error(`gitml ${args.join(' ')}: ${r.stderr}`);
    };
    await ok(['register', 'dataset', 'digits', path.join(inputs, 'digits'), '--description', HOSTILE, '--tag', 'source="mnist"', '--commit']);
    await ok(['register', 'environment', 'torch', path.join(inputs, 'conda.yaml'), '--spec', 'conda_file=conda.yaml', '--commit']);
    await ok(['register', 'model', 'mnist', path.join(inputs, 'model.pt'), '--input', 'datasets/digits@1', '--input', 'environments/torch@1', '--spec', 'environment=environments/torch@1', '--description', 'digit classifier', '--commit']);
    await ok(['register', 'model', 'mnist', path.join(inputs, 'model2.pt'), '--input', 'datasets/digits@1', '--commit']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    await ok(['promote', 'models/mnist@1', '--to', 'production', '--merge']);
    await ok(['run', '--', 'sh', '-c', 'echo trained']);
    await box.git(repo, ['add', '-A']);
    await box.git(repo, ['commit', '-q', '-m', 'a run']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });
  afterAll(async () => {
    await browser?.close();
    for (const s of servers) s.kill('SIGTERM');
    await box?.cleanup();
  });

  test('assets by type, with versions, stages and a search', async () => {
    const url = await startUi(repo);
    const page = await open(url, 'assets');
    const rows = await page.$$eval('section[data-type] tr.asset', (trs) => trs.map((tr) => `${tr.closest('section')!.getAttribute('data-type')}:${tr.getAttribute('data-name')}`));
    expect(rows).toEqual(['dataset:digits', 'environment:torch', 'model:mnist']);
    const mnist = await page.$eval('tr.asset[data-name="mnist"]', (tr) => ({ versions: Array.from(tr.querySelectorAll('a.version')).map((a) => a.textContent), stages: Array.from(tr.querySelectorAll('a.stage')).map((a) => a.textContent) }));
    expect(mnist).toEqual({ versions: ['1', '2'], stages: ['production → 1'] });
    await page.type('input[name=q]', 'classifier');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    expect(await page.$$eval('tr.asset', (trs) => trs.map((tr) => tr.getAttribute('data-name')))).toEqual(['mnist']);
    // By tag too.
    await page.goto(`${url}?q=${encodeURIComponent('source="mnist"')}`);
    expect(await page.$$eval('tr.asset', (trs) => trs.map((tr) => tr.getAttribute('data-name')))).toEqual(['digits']);
  });

  test("a version's page: metadata, files and where their bytes are, the lineage graph (clickable), the promotion history", async () => {
    const url = await startUi(repo);
    const page = await open(`${url}asset/model/mnist/1`, 'model-version');
    const nodes = await page.$$eval('svg.lineage g.node', (gs) => gs.map((g) => g.getAttribute('data-id')));
    expect(nodes).toEqual(expect.arrayContaining(['models/mnist@1', 'datasets/digits@1', 'environments/torch@1']));
    expect(nodes.some((n) => n!.startsWith('commit:'))).toBe(true);
    const edges = await page.$$eval('svg.lineage g.edge', (gs) => gs.map((g) => `${g.getAttribute('data-from')} -${g.getAttribute('data-label')}-> ${g.getAttribute('data-to')}`));
    expect(edges).toEqual(expect.arrayContaining(['datasets/digits@1 -input-> models/mnist@1', 'environments/torch@1 -input-> models/mnist@1']));
    // Each drawn box lies inside the picture.
    const inside = await page.$$eval('svg.lineage', ([svg]) => Array.from(svg!.querySelectorAll('rect')).every((r) => r.x.baseVal.value >= 0 && r.x.baseVal.value + r.width.baseVal.value <= (svg as SVGSVGElement).viewBox.baseVal.width + 1));
    expect(inside).toBe(true);
    const files = await page.$$eval('table.files tbody tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)));
    expect(files).toEqual([['model.pt', expect.stringMatching(/^195(\.3)? KiB$/), expect.any(String), 'yes', 'yes']]);
    const history = await page.$$eval('table.history tbody tr', (trs) => trs.map((tr) => tr.querySelector('td')!.textContent));
    expect(history).toEqual(['production']);
    // The dataset node is a link to its page.
    await Promise.all([page.waitForNavigation(), page.click('svg.lineage a g.node[data-id="datasets/digits@1"]')]);
    expect(page.url()).toBe(`${url}asset/dataset/digits/1`);
    await page.screenshot({ path: path.join(SHOTS, 'ui-dataset-version.png'), fullPage: true });
  });

  test('a hostile description is text: nothing in it runs, no script element exists', async () => {
    const url = await startUi(repo);
    for (const [p, shot] of [['', 'hostile-list'], ['asset/dataset/digits/1', 'hostile-version']] as const) {
      const page = await open(`${url}${p}`, shot);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await page.$$('script')).toHaveLength(0);
      expect(await page.$$('img')).toHaveLength(0);
      expect(await page.evaluate(() => document.body.innerText)).toContain('<script>window.__pwned = 1</script>');
    }
  });

  test('runs, a run, and a diff between two versions', async () => {
    const url = await startUi(repo);
    const runs = await open(`${url}runs`, 'runs');
    const statuses = await runs.$$eval('tr.run', (trs) => trs.map((tr) => tr.getAttribute('data-status')));
    expect(statuses).toEqual(['completed']);
    await Promise.all([runs.waitForNavigation(), runs.click('tr.run a')]);
    expect(await runs.evaluate(() => document.body.innerText)).toContain("sh -c 'echo trained'");
    const diff = await open(`${url}diff/model/mnist/1/2`, 'diff');
    expect(await diff.$$eval('ul.changes li', (lis) => lis.map((li) => li.textContent)).then((l) => l.sort())).toEqual(['added model2.pt', 'removed model.pt']);
  });

  test('another repository, from outside any repository; the server is read-only and loopback-only', async () => {
    const outside = box.path('elsewhere');
    await fsp.mkdir(outside);
    const url = await startUi(outside, [remote]);
    const page = await open(url, 'remote-assets');
    expect(await page.$$eval('tr.asset', (trs) => trs.map((tr) => tr.getAttribute('data-name')))).toEqual(['digits', 'torch', 'mnist']);
    const version = await open(`${url}asset/model/mnist/1`, 'remote-version');
    expect(await version.$$eval('svg.lineage g.node', (gs) => gs.map((g) => g.getAttribute('data-id')))).toEqual(expect.arrayContaining([`${remote}#models/mnist@1`, `${remote}#datasets/digits@1`]));
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
    // A page on another site reaching this port through DNS rebinding names its own host.
    const rebinding = await new Promise<number>((resolve, reject) => {
      const req = http.get(url, { headers: { host: 'attacker.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    expect(rebinding).toBe(421);
    const headers = (await fetch(url)).headers;
    expect(headers.get('content-security-policy')).toContain("default-src 'none'");
    expect((await fetch(`${url}asset/model/..%2F..%2Fetc/1`)).status).toBe(404);
  });
});
