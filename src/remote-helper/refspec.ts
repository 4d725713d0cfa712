/** `push` lines of the remote-helper protocol: `[+]<src>:<dst>`, `:<dst>` deletes. Pure. */
export interface PushSpec {
  force: boolean;
  /** Local ref or object name; empty for a delete. */
  src: string;
  dst: string;
  /** The line as git sent it (without "push "), passed on to the real git push. */
  raw: string;
}

export function parsePushSpec(raw: string): PushSpec | null {
  const force = raw.startsWith('+');
  const body = force ? raw.slice(1) : raw;
  const colon = body.lastIndexOf(':');
  if (colon < 0) return null;
  const src = body.slice(0, colon);
  const dst = body.slice(colon + 1);
  if (!dst) return null;
  return { force, src, dst, raw };
}

/** One line of `git push --porcelain`: `<flag>\t<from>:<to>\t<summary>[ (<reason>)]`. */
export interface PorcelainStatus {
  dst: string;
  ok: boolean;
  /** For failures: the reason git gave ("non-fast-forward", "fetch first", ...). */
  reason: string;
}

export function parsePorcelainLine(line: string): PorcelainStatus | null {
  const parts = line.split('\t');
  if (parts.length < 3 || parts[0]!.length !== 1) return null;
  const flag = parts[0]!;
  const refs = parts[1]!;
  const summary = parts.slice(2).join('\t');
  const colon = refs.lastIndexOf(':');
  if (colon < 0 || !' +-*!='.includes(flag)) return null;
  const dst = refs.slice(colon + 1);
  if (flag !== '!') return { dst, ok: true, reason: '' };
  const m = /\(([^)]*)\)\s*$/.exec(summary);
  return { dst, ok: false, reason: m ? m[1]! : summary.replace(/^\[[^\]]*\]\s*/, '') || 'rejected' };
}

/** Underlying URLs are handed to git as arguments: one that looks like an option is refused. */
export function isSafeUnderlyingUrl(url: string): boolean {
  return url.length > 0 && !url.startsWith('-') && !/[\0\n\r]/.test(url);
}
