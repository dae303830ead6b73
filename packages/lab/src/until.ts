/**
 * The polling wait of the lab tests: resolves once `condition()` holds, throws naming `what` after
 * `timeoutMs`. The poll sleeps between checks: a test spinning here would starve the emulated
 * guest's two vCPUs, and with them rxe's timers and the server under test.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, pollMs = 5): Promise<void> {
  for (const deadline = performance.now() + timeoutMs; !(await condition()); ) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
