import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** clients/ts (this file runs as dist/test/support/paths.js). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The repository. */
export const REPO_ROOT = path.resolve(PACKAGE_ROOT, '..', '..');
