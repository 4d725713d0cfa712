import { addPatterns, encodePattern, listTracked, removePatterns, TRACK_ATTRIBUTES } from '../../src/attributes';
import { mergePointers } from '../../src/merge';
import { formatBytes, Progress } from '../../src/progress';
import { isSafeUnderlyingUrl, parsePorcelainLine, parsePushSpec } from '../../src/remote-helper/refspec';
import { backoffDelay, withRetry } from '../../src/util/retry';
import { BatchChannel } from '../../src/util/batches';
import { runInOrder } from '../../src/util/pool';
import { looseObjectCount } from '../../src/git/pack-loose';
import { GitmlError } from '../../src/errors';
import { objectKey, parseKey } from '../../src/objects/layout';

describe('.gitattributes editing', () => {
  test('adds lines once and keeps foreign lines untouched', () => {
    const start = '*.txt text\n';
    const a = addPatterns(start, ['*.pt', 'data/**']);
    expect(a.text).toBe(`*.txt text\n*.pt ${TRACK_ATTRIBUTES}\ndata/** ${TRACK_ATTRIBUTES}\n`);
    expect(a.added).toEqual(['*.pt', 'data/**']);
    const b = addPatterns(a.text, ['*.pt']);
    expect(b.added).toEqual([]);
    expect(b.already).toEqual(['*.pt']);
    expect(listTracked(a.text)).toEqual(['*.pt', 'data/**']);
    const c = removePatterns(a.text, ['*.pt', 'nope']);
    expect(c.text).toBe(`*.txt text\ndata/** ${TRACK_ATTRIBUTES}\n`);
    expect(c.removed).toEqual(['*.pt']);
  });

  test('spaces are encoded as git reads them; CRLF files stay CRLF', () => {
    expect(encodePattern('my models/*.pt')).toBe('my[[:space:]]models/*.pt');
    const r = addPatterns('a text\r\n', ['my file.bin']);
    expect(r.text).toBe(`a text\r\nmy[[:space:]]file.bin ${TRACK_ATTRIBUTES}\r\n`);
    expect(listTracked(r.text)).toEqual(['my file.bin']);
  });

  test('negative, empty and multi-line patterns are refused', () => {
    expect(() => encodePattern('!*.pt')).toThrow(/negative/);
    expect(() => encodePattern('')).toThrow(/empty/);
    expect(() => encodePattern('a\nb')).toThrow(/line break/);
  });
});

describe('pointer merge', () => {
  const [o, a, b] = ['base', 'ours', 'theirs'].map((s) => Buffer.from(s)) as [Buffer, Buffer, Buffer];
  test('one-sided changes resolve, two-sided conflict keeps ours', () => {
    expect(mergePointers(o, a, a)).toEqual({ result: 'ours', conflict: false });
    expect(mergePointers(o, o, b)).toEqual({ result: 'theirs', conflict: false });
    expect(mergePointers(o, a, o)).toEqual({ result: 'ours', conflict: false });
    expect(mergePointers(o, a, b)).toEqual({ result: 'ours', conflict: true });
  });
});

describe('remote helper parsing', () => {
  test('push specs', () => {
    expect(parsePushSpec('refs/heads/main:refs/heads/main')).toMatchObject({ force: false, src: 'refs/heads/main', dst: 'refs/heads/main' });
    expect(parsePushSpec('+HEAD:refs/heads/x')).toMatchObject({ force: true, src: 'HEAD', dst: 'refs/heads/x' });
    expect(parsePushSpec(':refs/heads/gone')).toMatchObject({ src: '', dst: 'refs/heads/gone' });
    expect(parsePushSpec('nocolon')).toBeNull();
  });
  test('porcelain status lines', () => {
    expect(parsePorcelainLine('*\trefs/heads/a:refs/heads/a\t[new branch]')).toEqual({ dst: 'refs/heads/a', ok: true, reason: '' });
    expect(parsePorcelainLine('=\trefs/heads/a:refs/heads/a\t[up to date]')).toMatchObject({ ok: true });
    expect(parsePorcelainLine('-\t:refs/heads/a\t[deleted]')).toMatchObject({ dst: 'refs/heads/a', ok: true });
    expect(parsePorcelainLine('!\trefs/heads/a:refs/heads/a\t[rejected] (non-fast-forward)')).toEqual({ dst: 'refs/heads/a', ok: false, reason: 'non-fast-forward' });
    expect(parsePorcelainLine('!\trefs/heads/a:refs/heads/a\t[remote rejected] (pre-receive hook declined)')).toMatchObject({ reason: 'pre-receive hook declined' });
    expect(parsePorcelainLine('To /tmp/x')).toBeNull();
    expect(parsePorcelainLine('Done')).toBeNull();
  });
  test('underlying URLs that look like options are refused', () => {
    expect(isSafeUnderlyingUrl('/srv/repo.git')).toBe(true);
    expect(isSafeUnderlyingUrl('--upload-pack=touch /tmp/x')).toBe(false);
    expect(isSafeUnderlyingUrl('a\nb')).toBe(false);
  });
});

describe('batch channel', () => {
  test('each pull takes everything found since the last; the loop ends after close once drained', async () => {
    const channel = new BatchChannel<number>();
    channel.push(1);
    channel.push(2);
    const seen: number[][] = [];
    let tookThreeAndFour!: () => void;
    const waitingForMore = new Promise<void>((resolve) => (tookThreeAndFour = resolve));
    const consumer = (async () => {
      for await (const batch of channel) {
        seen.push(batch);
        // Found while this batch is being worked on: the next pull takes them together.
        if (batch.includes(2)) {
          channel.push(3);
          channel.push(4);
        }
        if (batch.includes(4)) tookThreeAndFour();
      }
    })();
    await waitingForMore;
    channel.push(5);
    channel.close();
    await consumer;
    expect(seen).toEqual([[1, 2], [3, 4], [5]]);
    expect(() => channel.push(6)).toThrow(/after close/);
  });

  test('a consumer that stops early drops what comes later', async () => {
    const channel = new BatchChannel<number>();
    channel.push(1);
    for await (const batch of channel) {
      expect(batch).toEqual([1]);
      break;
    }
    channel.push(2);
    channel.close();
    const rest: number[][] = [];
    for await (const batch of channel) rest.push(batch);
    expect(rest).toEqual([]);
  });
});

describe('git count-objects', () => {
  test('reads the loose-object count, and nothing from anything else', () => {
    expect(looseObjectCount('20108 objects, 80832 kilobytes\n')).toBe(20108);
    expect(looseObjectCount('1 object, 4 kilobytes\n')).toBe(1);
    expect(looseObjectCount('0 objects, 0 kilobytes')).toBe(0);
    expect(looseObjectCount('')).toBe(0);
    expect(looseObjectCount('warning: garbage found: x\n12 objects, 48 kilobytes')).toBe(0);
  });
});

describe('runInOrder', () => {
  test('results come in the items\' order, and no group starts before the one before it was used', async () => {
    const events: string[] = [];
    const used: number[] = [];
    const items = Array.from({ length: 10 }, (_, i) => i);
    await runInOrder(
      items,
      3,
      async (i) => {
        events.push(`start ${i}`);
        // Later items of a group finish first.
        await new Promise((resolve) => setTimeout(resolve, (3 - (i % 3)) * 5));
        return i * i;
      },
      (i, value) => {
        events.push(`use ${i}`);
        used.push(value);
      },
    );
    expect(used).toEqual(items.map((i) => i * i));
    for (let group = 1; group * 3 < items.length; group++) {
      expect(events.indexOf(`start ${group * 3}`)).toBeGreaterThan(events.indexOf(`use ${group * 3 - 1}`));
    }
  });

  test('a failure is thrown once its group ended; later groups never start', async () => {
    const started: number[] = [];
    const used: number[] = [];
    const run = runInOrder(
      [0, 1, 2, 3, 4, 5],
      2,
      async (i) => {
        started.push(i);
        if (i === 3) throw new Error('three');
        return i;
      },
      (i) => used.push(i),
    );
    await expect(run).rejects.toThrow('three');
    expect(started.sort()).toEqual([0, 1, 2, 3]);
    expect(used).toEqual([0, 1]);
  });
});

describe('retry', () => {
  test('backoff doubles up to the cap, with jitter in the upper half', () => {
    const policy = { retries: 8, baseDelayMs: 250, maxDelayMs: 10_000 };
    expect(backoffDelay(policy, 1, () => 0)).toBe(125);
    expect(backoffDelay(policy, 1, () => 1)).toBe(250);
    expect(backoffDelay(policy, 3, () => 1)).toBe(1000);
    expect(backoffDelay(policy, 20, () => 1)).toBe(10_000);
  });
  test('retries retryable errors only, and gives up after the budget', async () => {
    let calls = 0;
    const quick = { retries: 3, baseDelayMs: 1, maxDelayMs: 2 };
    await expect(
      withRetry(async () => {
        calls++;
        throw new GitmlError('E_STORE_IO', 'busy', { retryable: true });
      }, quick),
    ).rejects.toThrow('busy');
    expect(calls).toBe(4);
    calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new GitmlError('E_OBJECT_MISSING', 'gone');
      }, quick),
    ).rejects.toThrow('gone');
    expect(calls).toBe(1);
    calls = 0;
    expect(
      await withRetry(async () => {
        if (++calls < 3) throw new GitmlError('E_STORE_IO', 'flaky', { retryable: true });
        return 'ok';
      }, quick),
    ).toBe('ok');
  });
});

describe('progress and sizes', () => {
  test('formats sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(64 * 1024 * 1024)).toBe('64.0 MiB');
  });
  test('prints nothing before the delay and a git-style line after', () => {
    let now = 0;
    const lines: string[] = [];
    const p = new Progress('Uploading gitml objects', 4, { write: (t) => lines.push(t) }, { enabled: true, delayMs: 1000, now: () => now });
    p.addBytes(1024);
    p.itemDone();
    expect(lines).toEqual([]);
    now = 2000;
    p.itemDone();
    p.finish();
    expect(lines[0]).toBe('\rUploading gitml objects:  50% (2/4), 1.00 KiB | 512 B/s');
    expect(lines[1]).toMatch(/, done\.\n$/);
  });
  test('a total still growing is shown as a count so far, then as a percentage', () => {
    let now = 0;
    const lines: string[] = [];
    const p = new Progress('Uploading gitml objects', 0, { write: (t) => lines.push(t) }, { enabled: true, delayMs: 1000, now: () => (now += 2000) });
    p.expect(3);
    p.itemDone();
    p.expect(1);
    p.itemDone();
    p.allExpected();
    p.itemDone();
    expect(lines).toEqual([
      expect.stringMatching(/^\rUploading gitml objects: 1\/3 so far, /),
      expect.stringMatching(/^\rUploading gitml objects: 2\/4 so far, /),
      expect.stringMatching(/^\rUploading gitml objects:  75% \(3\/4\), /),
    ]);
  });
});

describe('store keys', () => {
  test('object keys round-trip and reject anything else', () => {
    const oid = 'ab'.repeat(32);
    expect(objectKey(oid)).toBe(`objects/ab/ab/${oid}`);
    expect(parseKey(objectKey(oid))).toEqual({ kind: 'object', oid });
    expect(parseKey(`objects/cd/ab/${oid}`)).toEqual({ kind: 'other' });
    expect(parseKey(`manifests/ab/ab/${oid}`)).toEqual({ kind: 'manifest', oid });
    expect(parseKey(`packs/${oid}.idx`)).toEqual({ kind: 'index', pack: oid });
    expect(() => objectKey('../x')).toThrow();
  });
});
