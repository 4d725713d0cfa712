import fs from 'node:fs';
import path from 'node:path';

/** The end-to-end tests run the built binaries (as git would): make sure they exist. */
export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, '..');
  for (const bin of ['dist/bin/gitml.js', 'dist/remote-helper/git-remote-gitml.js']) {
    if (!fs.existsSync(path.join(root, bin))) {
      throw new Error(`${bin} is missing: run \`npm run build\` first (npm test does it for you)`);
    }
  }
}
