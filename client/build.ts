// Bundles the client with esbuild into build/public (served by the server). `--watch` rebuilds on change.
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(root, '..', 'build', 'public');

await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, 'assets'), { recursive: true });
await cp(path.join(root, 'pages'), out, { recursive: true });

const options: esbuild.BuildOptions = {
  entryPoints: { app: path.join(root, 'app.ts') },
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  sourcemap: true,
  minify: process.env.NODE_ENV === 'production',
  outdir: path.join(out, 'assets'),
  logLevel: 'warning',
};

if (process.argv.includes('--watch')) {
  const context = await esbuild.context(options);
  await context.watch();
  process.stdout.write(`watching client/ -> ${out}\n`);
} else {
  await esbuild.build(options);
  process.stdout.write(`client built into ${path.relative(process.cwd(), out) || '.'}\n`);
}
