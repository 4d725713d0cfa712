/** One resolved setting and where it came from (src/config.ts resolves them). */
export interface Setting {
  value: string;
  /** Human-readable origin: "env GITML_STORE", "git config (file:/home/me/.gitconfig)", ".gitmlconfig in HEAD". */
  source: string;
  /**
   * Who wrote it: the person running gitml (environment, their own git config) or the repository
   * (its committed .gitmlconfig, which anyone who can push may edit). docs/security.md.
   */
  origin: 'user' | 'repository';
  /** Relative paths in this setting are relative to this directory. */
  baseDir: string;
}

/** What store code needs to read settings: the winning value, and the person's own values of a key. */
export interface SettingsView {
  get(key: string): Setting | undefined;
  getAllFromUser(key: string): Setting[];
}
