/**
 * Finding the directory the guest may write: the pnpm workspace root above the command's cwd,
 * so a package's tests can write caches and results anywhere in the checkout, and the lab's own
 * cache (.lab/) lives with the checkout rather than in a global place.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const workspaceMarker = 'pnpm-workspace.yaml';

/** The nearest ancestor of `start` (itself included) holding pnpm-workspace.yaml, or null. */
export function findWorkspaceRoot(start: string): string | null {
  let directory = start;
  for (;;) {
    if (existsSync(join(directory, workspaceMarker))) return directory;
    const parent = dirname(directory);
    if (parent === directory) return null;
    directory = parent;
  }
}
