import v8 from 'node:v8';

/**
 * Heap growth allowed past what a full collection finds live, in percent. V8 lets the heap grow up to
 * four times the live data before it collects again when a process allocates fast, as the filter and
 * the helper do through a checkout or push of 100,000 files: their live data was ~25-60 MiB, their
 * heap 110-130 MiB of mostly garbage, the process 190-240 MiB. At 1.5 times: 155-175 MiB, for more
 * full collections (a 20,000-file clone 3% slower; docs/performance.md, "100,000 small files").
 */
const HEAP_GROWING_PERCENT = 50;

/**
 * Process-wide settings and the end of the process, applied by the entry points only (bin/, filters/,
 * remote-helper/). Library code never touches process state and never exits.
 */
export function setupProcess(env: NodeJS.ProcessEnv): void {
  // The AWS SDK warns on every start under Node 20 (support ends in 2027). In a filter that git starts
  // for every checkout the warning is noise on the user's terminal; gitml's own docs state the Node
  // versions it supports. An explicit setting by the user is respected.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Read by V8 at every full collection, so it applies from here on; a value given on node's
  // command line is left alone.
  if (!process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) {
    v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  }
}

/**
 * Runs an entry point's main and ends the process with its exit code once stdout and stderr are
 * flushed. Setting `process.exitCode` is not enough: git keeps the remote helper's and the filter's
 * stdin open, and an SDK may keep sockets alive, so Node would wait forever and so would git.
 * `describeCrash` turns an unexpected rejection into the one line the person reads.
 */
export function runMain(main: () => Promise<number>, describeCrash: (e: unknown) => string): void {
  // Whoever read our stdout is gone (git stopped, or `gitml ls-files | head`): nothing we print can
  // arrive any more, so the process ends at once, quietly, as a process killed by SIGPIPE would
  // (status 141). Without a listener Node would crash with a stack trace on stderr.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(CLOSED_OUTPUT_STATUS);
    process.stderr.write(`gitml: cannot write to standard output: ${e.message}\n`);
    process.exit(2);
  });
  main().then(
    (code) => exitAfterFlush(code),
    (e: unknown) => {
      process.stderr.write(describeCrash(e));
      exitAfterFlush(2);
    },
  );
}

/** 128 + SIGPIPE: what a shell reports for a writer whose reader went away. */
const CLOSED_OUTPUT_STATUS = 141;

function exitAfterFlush(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  for (const stream of [process.stdout, process.stderr]) {
    // A write callback fires once everything written before it is handed to the OS (or the stream
    // failed, for instance because git closed the pipe: nothing left to flush then).
    if (stream.destroyed || !stream.writable) done();
    else stream.write('', () => done());
  }
}
