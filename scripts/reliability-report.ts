import fs from 'node:fs';
import path from 'node:path';

/**
 * `npm run reliability:report`: the table for docs/reliability.md, from the lines the reliability
 * suite appended to test-results/reliability.jsonl (the latest result of each fault class, CI size and
 * soak size separately).
 */
interface Line {
  fault: string;
  cases: number;
  passed: number;
  bytesLost: number;
  danglingPointers: number;
  secretsLeaked: number;
  notes?: string;
  soak: boolean;
  at: string;
}

const file = path.resolve(__dirname, '..', '..', 'test-results', 'reliability.jsonl');
if (!fs.existsSync(file)) {
  process.stderr.write(`no results yet: run npm test (or npm run test:soak) first (${file})\n`);
  process.exitCode = 1;
} else {
  const latest = new Map<string, Line>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const l = JSON.parse(line) as Line;
    latest.set(`${l.soak ? 'soak' : 'ci'}\0${l.fault}`, l);
  }
  process.stdout.write('| fault or input class | run | cases | passed | bytes lost | dangling pointers published | secrets leaked | notes |\n');
  process.stdout.write('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n');
  for (const l of [...latest.values()].sort((a, b) => (a.soak === b.soak ? 0 : a.soak ? 1 : -1))) {
    process.stdout.write(`| ${l.fault} | ${l.soak ? 'soak' : 'CI'} ${l.at.slice(0, 10)} | ${l.cases} | ${l.passed} | ${l.bytesLost} | ${l.danglingPointers} | ${l.secretsLeaked} | ${(l.notes ?? '').replace(/\|/g, '/')} |\n`);
  }
}

/** The security table (test-results/security.jsonl, written by test/security/). */
interface SecurityLine {
  case: string;
  cases: number;
  passed: number;
  bytesOutside?: number;
  credentialsSent?: number;
  peakRssMiB?: number;
  seconds?: number;
  notes?: string;
  at: string;
}
const securityFile = path.resolve(__dirname, '..', '..', 'test-results', 'security.jsonl');
if (fs.existsSync(securityFile)) {
  const latest = new Map<string, SecurityLine>();
  for (const line of fs.readFileSync(securityFile, 'utf8').split('\n').filter(Boolean)) {
    const l = JSON.parse(line) as SecurityLine;
    latest.set(l.case, l);
  }
  const n = (v: number | undefined) => (v === undefined ? '' : String(v));
  process.stdout.write('\n| security case | run | cases | passed | files written outside target | credentials sent to unapproved hosts | peak RSS MiB | seconds | notes |\n');
  process.stdout.write('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n');
  for (const l of latest.values()) {
    process.stdout.write(`| ${l.case} | CI ${l.at.slice(0, 10)} | ${l.cases} | ${l.passed} | ${n(l.bytesOutside)} | ${n(l.credentialsSent)} | ${n(l.peakRssMiB)} | ${n(l.seconds)} | ${(l.notes ?? '').replace(/\|/g, '/')} |\n`);
  }
}
