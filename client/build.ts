// Bundles the client with esbuild into build/public (served by the server). `--watch` rebuilds on change.
// Entries: the board view (app), the board overview (overview), the login page (login), the public status
// page (status) and the SharedWorker that holds the stream.
// NODE_ENV=production minifies; every build prints the size of each file (raw and gzipped).
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = path.dirname(fileURLToPath(import.meta.url));
const project = path.join(root, '..');
/** `--outdir <dir>` builds elsewhere (the browser tests use a private folder); default build/public. */
const outdirFlag = process.argv.indexOf('--outdir');
const outdirArgument = outdirFlag === -1 ? undefined : process.argv[outdirFlag + 1];
const out = outdirArgument ? path.resolve(outdirArgument) : path.join(project, 'build', 'public');

/** A hash of the client's sources: the SharedWorker's URL carries it, so old and new builds never mix. */
async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const folder of ['client', 'shared']) {
    const entries = await readdir(path.join(project, folder), { recursive: true, withFileTypes: true });
    const files = entries
      .filter((entry) => entry.isFile())
      .map((entry) => path.join(entry.parentPath, entry.name))
      .sort();
    for (const file of files) hash.update(file).update(await readFile(file));
  }
  return hash.digest('hex').slice(0, 12);
}

async function reportSizes(metafile: esbuild.Metafile | undefined): Promise<void> {
  const kib = (size: number) => `${(size / 1024).toFixed(1)} KiB`;
  const files = Object.keys(metafile?.outputs ?? {})
    .filter((file) => !file.endsWith('.map'))
    .sort();
  for (const file of files) {
    const bytes = await readFile(path.join(project, file));
    process.stdout.write(
      `  ${path.relative(out, path.join(project, file)).padEnd(24)} ${kib(bytes.length).padStart(10)}` +
        `  (gzip ${kib(gzipSync(bytes).length)})\n`,
    );
  }
}

await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, 'assets'), { recursive: true });
await cp(path.join(root, 'pages'), out, { recursive: true });

const production = process.env.NODE_ENV === 'production';
const options: esbuild.BuildOptions = {
  absWorkingDir: project,
  entryPoints: {
    app: path.join(root, 'app.ts'),
    overview: path.join(root, 'overview.ts'),
    login: path.join(root, 'login.ts'),
    status: path.join(root, 'status.ts'),
    'stream-worker': path.join(root, 'stream-worker.ts'),
  },
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  sourcemap: true,
  minify: production,
  metafile: true,
  define: { __PULSEBOARD_BUILD_ID__: JSON.stringify(await sourceHash()) },
  outdir: path.join(out, 'assets'),
  logLevel: 'warning',
};

if (process.argv.includes('--watch')) {
  const context = await esbuild.context(options);
  await context.watch();
  process.stdout.write(`watching client/ -> ${out}\n`);
} else {
  const result = await esbuild.build(options);
  process.stdout.write(
    `client built into ${path.relative(process.cwd(), out) || '.'}${production ? ' (minified)' : ''}\n`,
  );
  await reportSizes(result.metafile);
}
