import fs from 'node:fs';
import path from 'node:path';
import { startAzurite, startS3rver, type RunningServer } from '../scripts/servers';

declare global {
  // eslint-disable-next-line no-var
  var __gitmlServers: RunningServer[] | undefined;
}

/**
 * The end-to-end tests run the built binaries (as git would), and the store tests talk to real
 * servers on loopback: s3rver and azurite start here, once, and their endpoints reach the test
 * workers through the environment.
 */
export default async function globalSetup(): Promise<void> {
  // As the entry points do (src/process-setup.ts): tests load the AWS SDK in the workers too.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const root = path.resolve(__dirname, '..');
  for (const bin of ['dist/bin/gitml.js', 'dist/remote-helper/git-remote-gitml.js']) {
    if (!fs.existsSync(path.join(root, bin))) {
      throw new Error(`${bin} is missing: run \`npm run build\` first (npm test does it for you)`);
    }
  }
  const [s3, azure] = await Promise.all([startS3rver(), startAzurite()]);
  globalThis.__gitmlServers = [s3, azure];
  process.env.GITML_TEST_S3_ENDPOINT = s3.endpoint;
  process.env.GITML_TEST_AZURE_ENDPOINT = azure.endpoint;
}
