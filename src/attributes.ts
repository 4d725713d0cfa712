import { GitmlError } from './errors';

/**
 * Editing .gitattributes for `gitml track` / `gitml untrack`. Pure functions over the file's text:
 * lines gitml did not write are kept exactly as they were.
 */
export const TRACK_ATTRIBUTES = 'filter=gitml diff=gitml merge=gitml -text';

/** gitattributes patterns cannot hold a plain space; git-lfs and git both read [[:space:]]. */
export function encodePattern(pattern: string): string {
  if (pattern.trim() === '') throw new GitmlError('E_USAGE', 'an empty pattern tracks nothing', { hint: 'Give a pattern such as "*.pt" or "data/**".' });
  if (/[\n\r\0]/.test(pattern)) throw new GitmlError('E_USAGE', `pattern ${JSON.stringify(pattern)} contains a line break or NUL`, { hint: 'Use a pattern on one line.' });
  if (pattern.startsWith('!')) {
    throw new GitmlError('E_USAGE', `pattern ${JSON.stringify(pattern)} is negative; .gitattributes does not allow "!" patterns`, {
      hint: 'Use `gitml untrack <pattern>` to stop tracking, or a more specific positive pattern.',
    });
  }
  return pattern.replace(/ /g, '[[:space:]]');
}

export function decodePattern(pattern: string): string {
  return pattern.replace(/\[\[:space:\]\]/g, ' ');
}

function lineEnding(text: string): string {
  return text.includes('\r\n') ? '\r\n' : '\n';
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The pattern of a line that sends files through gitml, or null. */
export function trackedPatternOf(line: string): string | null {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return null;
  const [pattern, ...attrs] = trimmed.split(/\s+/);
  if (!pattern || !attrs.includes('filter=gitml')) return null;
  return decodePattern(pattern);
}

export function listTracked(text: string): string[] {
  return splitLines(text)
    .map(trackedPatternOf)
    .filter((p): p is string => p !== null);
}

export function addPatterns(text: string, patterns: readonly string[]): { text: string; added: string[]; already: string[] } {
  const eol = lineEnding(text);
  const existing = new Set(listTracked(text));
  const lines = splitLines(text);
  const added: string[] = [];
  const already: string[] = [];
  for (const pattern of patterns) {
    const encoded = encodePattern(pattern);
    if (existing.has(pattern)) {
      already.push(pattern);
      continue;
    }
    lines.push(`${encoded} ${TRACK_ATTRIBUTES}`);
    existing.add(pattern);
    added.push(pattern);
  }
  return { text: lines.length ? lines.join(eol) + eol : '', added, already };
}

export function removePatterns(text: string, patterns: readonly string[]): { text: string; removed: string[] } {
  const eol = lineEnding(text);
  const wanted = new Set(patterns);
  const removed: string[] = [];
  const kept = splitLines(text).filter((line) => {
    const p = trackedPatternOf(line);
    if (p !== null && wanted.has(p)) {
      removed.push(p);
      return false;
    }
    return true;
  });
  return { text: kept.length ? kept.join(eol) + eol : '', removed };
}

/** Appends lines that are not there yet (compared trimmed); foreign lines stay untouched. Pure. */
export function ensureLines(text: string, wanted: readonly string[]): { text: string; added: string[] } {
  const eol = lineEnding(text);
  const lines = splitLines(text);
  const have = new Set(lines.map((l) => l.trim()));
  const added = wanted.filter((w) => !have.has(w.trim()));
  const all = [...lines, ...added];
  return { text: all.length ? all.join(eol) + eol : '', added };
}

/**
 * What asset folders need: their files through gitml, their metadata as plain text that diffs and
 * merges as text (`!diff !merge` take back what the folder rule set: reviewers read asset.yaml in
 * `git show` and pull requests, not "Binary files differ").
 */
export function assetFolderRules(folder: string): string[] {
  const f = encodePattern(folder);
  return [`${f}/** ${TRACK_ATTRIBUTES}`, `${f}/**/asset.yaml -filter !diff !merge text`, `${f}/**/run.yaml -filter !diff !merge text`, `${f}/**/.gitignore -filter !diff !merge text`];
}

/** A metadata rule earlier versions of gitml wrote ("-diff -merge" made asset.yaml binary in diffs). */
const OUTDATED_METADATA_RULE = /^(\S+\/\*\*\/(?:asset\.yaml|run\.yaml|\.gitignore)) -filter -diff -merge text$/;

/**
 * The asset rules in place: every outdated metadata rule (of any asset folder) rewritten where it
 * stands, missing rules for `folder` appended; foreign lines untouched. Pure.
 */
export function withAssetRules(text: string, folder: string): { text: string; added: string[] } {
  const eol = lineEnding(text);
  const lines = splitLines(text).map((l) => {
    const m = OUTDATED_METADATA_RULE.exec(l.trim());
    return m ? `${m[1]} -filter !diff !merge text` : l;
  });
  const base = lines.length ? lines.join(eol) + eol : '';
  const r = ensureLines(base, assetFolderRules(folder));
  return { text: r.text, added: r.text === text ? [] : r.added.length ? r.added : ['(outdated rules replaced)'] };
}
