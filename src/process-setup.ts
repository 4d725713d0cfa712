/**
 * Process-wide settings and the end of the process, applied by the entry points only (bin/, filters/,
 * remote-helper/). Library code never touches process state and never exits.
 */
export function setupProcess(env: NodeJS.ProcessEnv): void {
  // The AWS SDK warns on every start under Node 20 (support ends in 2027). In a filter that git starts
  // for every checkout the warning is noise on the user's terminal; gitml's own docs state the Node
  // versions it supports. An explicit setting by the user is respected.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/**
 * Runs an entry point's main and ends the process with its exit code once stdout and stderr are
 * flushed. Setting `process.exitCode` is not enough: git keeps the remote helper's and the filter's
 * stdin open, and an SDK may keep sockets alive, so Node would wait forever and so would git.
 * `describeCrash` turns an unexpected rejection into the one line the person reads.
 */
export function runMain(main: () => Promise<number>, describeCrash: (e: unknown) => string): void {
  main().then(
    (code) => exitAfterFlush(code),
    (e: unknown) => {
      process.stderr.write(describeCrash(e));
      exitAfterFlush(2);
    },
  );
}

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
