import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/sandbox';

/** One row of the security table in docs/reliability.md (`npm run reliability:report`). */
export interface SecurityResult {
  case: string;
  cases: number;
  passed: number;
  /** Files written outside the target directory. */
  bytesOutside?: number;
  /** Requests that reached a host the user did not approve, carrying credentials. */
  credentialsSent?: number;
  /** Peak RSS of the gitml process, MiB. */
  peakRssMiB?: number;
  /** Longest time a case took to end, seconds. */
  seconds?: number;
  notes?: string;
}

/** Appends a result line (test-results/security.jsonl). */
export function securityReport(result: SecurityResult): void {
  const dir = path.join(ROOT, 'test-results');
  fs.mkdirSync(dir, { recursive: true });
  fs.appendFileSync(path.join(dir, 'security.jsonl'), `${JSON.stringify({ ...result, at: new Date().toISOString() })}\n`);
}
