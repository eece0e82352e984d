// `pulseboard/publisher` as a package: `npm pack` builds the tarball (prepack: tsc emit of shared/publisher.ts
// and what it imports), a scratch project installs it, and a plain `node script.mjs` and a TypeScript
// consumer use it with their own Redis client. The install is offline: the scratch project's lockfile is
// this repo's (dev dependencies left out), so npm takes every package from its cache, never a registry.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseEnvelope } from '../../shared/events.ts';
import { redisNames } from '../../shared/keys.ts';
import { useTestBed } from '../helpers/test-bed.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

interface LockEntry {
  dev?: boolean;
}

/** The scratch project's lockfile: the tarball plus this repo's locked production dependencies. */
async function scratchLockfile(tarball: string, file: string): Promise<object> {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const integrity = `sha512-${createHash('sha512')
    .update(await readFile(tarball))
    .digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'scratch', dependencies: { pulseboard: `file:${file}` } },
    'node_modules/pulseboard': {
      version: pkg.version,
      resolved: `file:${file}`,
      integrity,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
    },
  };
  for (const [where, entry] of Object.entries(lock.packages as Record<string, LockEntry>)) {
    if (where !== '' && !entry.dev) packages[where] = entry;
  }
  return { name: 'scratch', lockfileVersion: 3, requires: true, packages };
}

const SCRIPT = `import { createClient } from 'redis';
import { createPublisher } from 'pulseboard/publisher';

const redis = await createClient({ url: process.env.REDIS_URL }).connect();
const publisher = createPublisher(redis, { prefix: process.env.PULSEBOARD_PREFIX });
const [id] = await publisher.publish({ type: 'status', service: 'api', state: 'degraded', message: 'from a package' });
console.log(id);
await redis.quit();
`;

// Type-checks only when the declarations resolve: an unresolved import would type the events as `any`
// and leave the expected error unused, which tsc reports.
const TYPED = `import { createSequencer, type Publisher } from 'pulseboard/publisher';
declare const publisher: Publisher;
declare const client: { sendCommand(args: string[]): Promise<unknown> };
export const ids: Promise<string[]> = publisher.publish({ type: 'status', service: 'api', state: 'ok' });
// @ts-expect-error: not an event type
export const bad = createSequencer(client).sequence([{ type: 'nope' }]);
`;

describe('pulseboard/publisher package (npm pack, install, plain node)', function () {
  this.timeout(180_000);
  const bed = useTestBed();
  let scratch: string;
  let packed: string[];

  before(async function () {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-package-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: ROOT });
    const [result] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    if (!result) throw new Error('npm pack printed no result');
    packed = result.files.map((entry) => entry.path);
    const tarball = path.join(scratch, result.filename);
    await writeFile(
      path.join(scratch, 'package.json'),
      JSON.stringify({
        name: 'scratch',
        private: true,
        type: 'module',
        dependencies: { pulseboard: `file:${result.filename}` },
      }),
    );
    await writeFile(
      path.join(scratch, 'package-lock.json'),
      JSON.stringify(await scratchLockfile(tarball, result.filename)),
    );
    await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: scratch });
  });
  after(async function () {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('packs built JavaScript with declarations for the publisher and nothing of the server in it', async function () {
    const built = packed.filter((file) => file.startsWith('build/')).sort();
    expect(built).to.deep.equal(
      [
        'boards',
        'events',
        'history-script',
        'keys',
        'publisher',
        'replica-wait',
        'script-runner',
        'sequence-script',
      ].flatMap((name) => [`build/publisher/${name}.d.ts`, `build/publisher/${name}.js`]),
    );
    const installed = path.join(scratch, 'node_modules/pulseboard/build/publisher');
    for (const file of await readdir(installed)) {
      if (!file.endsWith('.js')) continue;
      const imports = [
        ...(await readFile(path.join(installed, file), 'utf8')).matchAll(/from ['"]([^'"]+)['"]/g),
      ];
      for (const [, specifier] of imports) expect(specifier, file).to.match(/^(\.\/[a-z-]+\.js|zod)$/);
    }
  });

  it('a plain `node script.mjs` publishes with its own Redis client; the event is in the log', async function () {
    await writeFile(path.join(scratch, 'script.mjs'), SCRIPT);
    const { stdout } = await run(process.execPath, ['script.mjs'], {
      cwd: scratch,
      env: { PATH: process.env.PATH ?? '', REDIS_URL: bed.redis.url, PULSEBOARD_PREFIX: bed.prefix },
    });
    const id = stdout.trim();
    expect(id).to.match(/^\d+-\d+$/);
    const names = redisNames(bed.prefix);
    const entries = await bed.client.xRange(names.log, id, id);
    expect(entries, 'the log stream entry of the printed id').to.have.length(1);
    expect(JSON.stringify(entries?.[0]?.message)).to.include('from a package');
    const envelope = parseEnvelope((await bed.client.hGet(names.status, 'api')) ?? '');
    if (!envelope.ok) throw new Error(`no status envelope for api: ${envelope.message}`);
    expect(envelope.value).to.deep.include({ id, type: 'status', service: 'api', state: 'degraded' });
  });

  it('type-checks a TypeScript consumer against the shipped declarations', async function () {
    await writeFile(path.join(scratch, 'typed.ts'), TYPED);
    await run(
      process.execPath,
      [TSC, '--noEmit', '--strict', '--module', 'nodenext', '--skipLibCheck', 'typed.ts'],
      {
        cwd: scratch,
      },
    );
  });
});
