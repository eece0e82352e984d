// Imported first by every client entry, before any schema is built: zod compiles object parsers with
// `new Function` unless told not to, and under our CSP (no 'unsafe-eval') even its guarded probe is
// reported as a policy violation. Object schemas read the setting when they are created, so this
// module's one side effect has to run before shared/ is evaluated (ESM evaluates imports in order).
import { config } from 'zod';

config({ jitless: true });
