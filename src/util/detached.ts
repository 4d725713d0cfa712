/**
 * A copy of `text` that shares no memory with the string it was cut from. V8 makes `slice` of 13
 * characters or more a view that keeps its whole parent alive: a path sliced from a request line or
 * from `git cat-file` output, kept per file (100,000 of them in a large checkout or push), would keep
 * every line with it.
 */
export function detached(text: string): string {
  // V8 copies anything shorter than 13 characters anyway (SlicedString::kMinLength).
  return text.length < 13 ? text : Buffer.from(text, 'utf8').toString('utf8');
}
