#!/usr/bin/env node
// The entry PM2 runs (ecosystem.config.cjs): one worker, its TypeScript loaded through tsx. Not the CLI
// (bin/pulseboard.js serve): under pm2-runtime, cluster workers inherit the runtime's own arguments
// (`ecosystem.config.cjs`), which the CLI would take for a command.
import { register } from 'tsx/esm/api';

register();
await import('../server/main.ts');
