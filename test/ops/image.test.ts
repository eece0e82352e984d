// The production image (Dockerfile) installs only `dependencies` and copies bin/, server/, shared/ and the
// client bundle. No Docker engine runs here, so this checks what would break it: a runtime import of a dev
// dependency or of a folder the image leaves out.
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { expect } from 'chai';
import { z } from 'zod';
import { ROOT } from './pm2-cluster.ts';

const RUNTIME_FOLDERS = ['bin', 'server', 'shared'];
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

async function sourceFiles(folder: string): Promise<string[]> {
  const entries = await readdir(path.join(ROOT, folder), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && /\.(?:ts|js)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

describe('production image contents', function () {
  it('imports at run time only production dependencies, Node built-ins and folders the image copies', async function () {
    const manifest = z
      .object({ dependencies: z.record(z.string(), z.string()) })
      .parse(JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')));
    const allowed = new Set(Object.keys(manifest.dependencies));
    const problems: string[] = [];
    for (const folder of RUNTIME_FOLDERS) {
      for (const file of await sourceFiles(folder)) {
        const source = await readFile(file, 'utf8');
        for (const match of source.matchAll(IMPORT)) {
          const specifier = match[1] ?? match[2]!;
          const where = path.relative(ROOT, file);
          if (specifier.startsWith('.')) {
            const target = path.relative(ROOT, path.resolve(path.dirname(file), specifier));
            const top = target.split(path.sep)[0]!;
            if (!RUNTIME_FOLDERS.includes(top)) problems.push(`${where}: ${specifier} is outside the image`);
          } else if (specifier.startsWith('node:') || builtinModules.includes(specifier)) {
            continue;
          } else if (!allowed.has(packageName(specifier))) {
            problems.push(`${where}: ${specifier} is not a production dependency`);
          }
        }
      }
    }
    expect(problems).to.deep.equal([]);
  });

  it('copies those folders into a runtime stage that runs pm2-runtime as a non-root user', async function () {
    const dockerfile = await readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    for (const folder of RUNTIME_FOLDERS)
      expect(runtime).to.match(new RegExp(`\\nCOPY ${folder} \\./${folder}\\n`));
    expect(runtime).to.include('COPY --from=build /app/build ./build');
    expect(runtime).to.include('COPY --from=prod-deps /app/node_modules ./node_modules');
    expect(runtime).to.match(/\nUSER node\n/);
    expect(runtime).to.include('/livez');
    // As `npm start`: workers accept their own connections (docs/deployment.md).
    expect(runtime).to.match(/\n\s+NODE_CLUSTER_SCHED_POLICY=none\n/);
    expect(runtime).to.include('CMD ["node_modules/.bin/pm2-runtime", "ecosystem.config.cjs"]');
  });
});
