/**
 * Prints one plain last line for CI: `tests: N passed, N failed`. A suite that could not run at all
 * (a syntax error, a failing beforeAll) counts as a failure, so it can never pass silently.
 * Written at process exit, so it comes after jest's own summary.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `tests: ${results.numPassedTests} passed, ${failed} failed\n`;
    process.once('exit', () => process.stderr.write(line));
  }
}
module.exports = SummaryReporter;
