import type { Gitml } from '../context';
import { GITML_SPEC, LFS_SPEC, type Pointer } from '../pointer';

/** A delayed file as git takes it back. */
export interface DelayedFile {
  pathname: string;
  pointer: Pointer;
  gitml: Gitml;
  /** Answer with the pointer and write the bytes at the end (direct checkout). */
  direct: boolean;
  /** Direct checkout: the copy of the bytes written during the download, when one was. */
  staged: string | undefined;
  /** Why the download failed (already reported), when it did. */
  error: unknown;
  /** This process downloaded and verified the bytes: no need to hash them again on the way out. */
  verified: boolean;
}

const DIRECT = 1;
const VERIFIED = 2;
const LFS = 4;
const OID_BYTES = 32;

/**
 * The files git was told are delayed, until git takes each back: every file of a checkout whose
 * bytes are not cached, 100,000 in a large one. Kept in columns (the oid as its 32 bytes, the size,
 * a few flags, which settings) rather than as two objects and a 64-digit string per file, which cost
 * ~200 bytes a file more and, with V8's slack on top, put a 100,000-file clone's filter over 200 MiB.
 * A file is a number (its slot) while it waits. Slots are never reused: a download still running
 * when git takes its file back (git should not, but) marks its own slot, never another file's.
 */
export class DelayedFiles {
  private readonly slotOf = new Map<string, number>();
  private readonly pathOf: (string | undefined)[] = [];
  private oids = Buffer.alloc(1024 * OID_BYTES);
  private sizes = new Float64Array(1024);
  private flags = new Uint8Array(1024);
  private settingsOf = new Uint16Array(1024);
  /** The settings files are checked out with (one per treeish git names: a handful at most). */
  private readonly settings: Gitml[] = [];
  /** Rare per-file extras: a direct checkout's staged copy, a failure (a file failed when it has one). */
  private readonly staged = new Map<number, string>();
  private readonly errors = new Map<number, unknown>();
  private used = 0;

  get size(): number {
    return this.slotOf.size;
  }

  /** Remembers a file git was just told is delayed; its slot. */
  add(pathname: string, pointer: Pointer, gitml: Gitml, direct: boolean): number {
    const earlier = this.slotOf.get(pathname);
    if (earlier !== undefined) this.release(earlier);
    const slot = this.newSlot();
    let settings = this.settings.indexOf(gitml);
    if (settings < 0) settings = this.settings.push(gitml) - 1;
    this.slotOf.set(pathname, slot);
    this.pathOf[slot] = pathname;
    this.oids.write(pointer.oid, slot * OID_BYTES, OID_BYTES, 'hex');
    this.sizes[slot] = pointer.size;
    this.flags[slot] = (direct ? DIRECT : 0) | (pointer.spec === LFS_SPEC ? LFS : 0);
    this.settingsOf[slot] = settings;
    return slot;
  }

  /** The file's path, or undefined once git has taken it back. */
  pathname(slot: number): string | undefined {
    return this.pathOf[slot];
  }

  /** The file's pointer, made afresh (a transient object: nothing of it is kept). */
  pointer(slot: number): Pointer {
    const at = slot * OID_BYTES;
    return { oid: this.oids.toString('hex', at, at + OID_BYTES), size: this.sizes[slot]!, spec: this.flags[slot]! & LFS ? LFS_SPEC : GITML_SPEC };
  }

  markVerified(slot: number): void {
    this.flags[slot]! |= VERIFIED;
  }

  markFailed(slot: number, error: unknown): void {
    this.errors.set(slot, error);
  }

  failed(slot: number): boolean {
    return this.errors.has(slot);
  }

  setStaged(slot: number, file: string | undefined): void {
    if (file === undefined) this.staged.delete(slot);
    else this.staged.set(slot, file);
  }

  /** git asks for the file again: everything about it; the file is no longer delayed. */
  take(pathname: string): DelayedFile | undefined {
    const slot = this.slotOf.get(pathname);
    if (slot === undefined) return undefined;
    const flags = this.flags[slot]!;
    const file: DelayedFile = {
      pathname,
      pointer: this.pointer(slot),
      gitml: this.settings[this.settingsOf[slot]!]!,
      direct: (flags & DIRECT) !== 0,
      staged: this.staged.get(slot),
      error: this.errors.has(slot) ? (this.errors.get(slot) ?? new Error('download failed')) : undefined,
      verified: (flags & VERIFIED) !== 0,
    };
    this.release(slot);
    return file;
  }

  /** Files git has not taken back, in the order they were delayed. */
  pathnames(): string[] {
    return [...this.slotOf.keys()];
  }

  /** Staged copies of files git never took back (it stopped early): for the caller to remove. */
  leftoverStaged(): string[] {
    return [...this.staged.values()];
  }

  private release(slot: number): void {
    this.slotOf.delete(this.pathOf[slot]!);
    this.pathOf[slot] = undefined;
    this.staged.delete(slot);
    this.errors.delete(slot);
  }

  private newSlot(): number {
    if (this.used === this.sizes.length) this.grow();
    return this.used++;
  }

  private grow(): void {
    const n = this.sizes.length * 2;
    const oids = Buffer.alloc(n * OID_BYTES);
    this.oids.copy(oids);
    const sizes = new Float64Array(n);
    sizes.set(this.sizes);
    const flags = new Uint8Array(n);
    flags.set(this.flags);
    const settingsOf = new Uint16Array(n);
    settingsOf.set(this.settingsOf);
    [this.oids, this.sizes, this.flags, this.settingsOf] = [oids, sizes, flags, settingsOf];
  }
}
