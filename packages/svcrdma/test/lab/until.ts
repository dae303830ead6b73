/**
 * Polling wait of the lab tests: resolves once `condition()` holds, throws naming `what` after
 * `timeoutMs`. The poll sleeps (a test spinning here would starve rxe's timers in the guest).
 */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000, pollMs = 5): Promise<void> {
  for (const deadline = performance.now() + timeoutMs; !condition(); ) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
