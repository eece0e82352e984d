// Reads a password for the `user` commands: without echo from a terminal (readline with its output
// muted after the prompt), or the first line of stdin when it is a pipe (`echo pw | pulseboard user add`).
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { CliError } from './errors.ts';

async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const newline = text.indexOf('\n');
    if (newline >= 0) return text.slice(0, newline).replace(/\r$/, '');
  }
  return text.replace(/\r$/, '');
}

async function askHidden(prompt: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) process.stderr.write(chunk);
      callback();
    },
  });
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = new Promise<string>((resolve) => rl.question(prompt, resolve));
    muted = true;
    return await answer;
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/** The new password; asked twice on a terminal. Throws when the two entries differ. */
export async function readNewPassword(what: string): Promise<string> {
  if (!process.stdin.isTTY) return readFirstLine(process.stdin);
  const first = await askHidden(`Password for ${what}: `);
  const second = await askHidden('Repeat it: ');
  if (first !== second) throw new CliError('the two passwords differ');
  return first;
}
