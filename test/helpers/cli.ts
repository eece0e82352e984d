// The real CLI (`node bin/pulseboard.js …`) as a user runs it: its own process, the environment given,
// stdin piped, everything it prints collected.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/pulseboard.js', import.meta.url));
/** A command still running after this is killed, so a hang fails its test instead of stalling it. */
const BACKSTOP_MS = 20_000;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `pulseboard <args>` with `env` as its whole environment (plus PATH; pass `...process.env` to
 * inherit the test's), `stdin` piped in, from the project folder.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const backstop = setTimeout(() => child.kill('SIGKILL'), BACKSTOP_MS);
    child.once('error', (error) => {
      clearTimeout(backstop);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(backstop);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}
