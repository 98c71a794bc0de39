import { forgetInterruptCleanups } from '../../src/util/interrupt.js';
import { forgetSecrets } from '../../src/util/redact.js';

/**
 * Runs before every unit file. The unit project reuses a worker for many files (vitest.config.ts, isolate:
 * false), so depl's process-wide registries carry over from the file before: each file starts with them
 * empty, as the new process each depl command is.
 */
forgetInterruptCleanups();
forgetSecrets();
