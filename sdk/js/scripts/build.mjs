#!/usr/bin/env node
// Builds dist/: ES module and CommonJS bundles of both entry points (esbuild), the
// <script>-tag bundle (IIFE defining window.OpenPartner), and the type declarations (tsc),
// in both flavours (.d.ts for import, .d.cts for require).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFile, readdir, rm, writeFile, stat } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const banner = `/*! @openpartner/sdk ${pkg.version} | Apache-2.0 */`;

await rm(dist, { recursive: true, force: true });

const common = {
  bundle: true,
  sourcemap: true,
  legalComments: 'none',
  define: { __SDK_VERSION__: JSON.stringify(pkg.version) },
  banner: { js: banner },
  logLevel: 'warning',
  absWorkingDir: root,
};
const entries = [
  { name: 'browser', entry: 'src/browser.ts', target: 'es2018', platform: 'browser' },
  { name: 'server', entry: 'src/server/index.ts', target: 'es2020', platform: 'neutral' },
];
for (const e of entries) {
  for (const [format, ext] of [
    ['esm', 'js'],
    ['cjs', 'cjs'],
  ]) {
    await build({
      ...common,
      entryPoints: [e.entry],
      outfile: join(dist, `${e.name}.${ext}`),
      format,
      define: { ...common.define, __CJS__: String(format === 'cjs') },
      target: e.target,
      platform: e.platform,
    });
  }
}
await build({
  ...common,
  entryPoints: ['src/global.ts'],
  outfile: join(dist, 'openpartner.global.js'),
  format: 'iife',
  target: 'es2018',
  platform: 'browser',
  minify: true,
  keepNames: true,
  define: { ...common.define, __CJS__: 'false' },
});

// Declarations: tsc emits dist/types/**/*.d.ts; each gets a .d.cts twin whose relative
// imports name .cjs files, so `require` consumers resolve CommonJS-flavoured types.
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], {
  stdio: 'inherit',
});
async function twin(dir) {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) await twin(p);
    else if (ent.name.endsWith('.d.ts')) {
      const src = await readFile(p, 'utf8');
      const out = src.replace(/(from\s+['"]\.{1,2}\/[^'"]*?)\.js(['"])/g, '$1.cjs$2').replace(
        /(import\(\s*['"]\.{1,2}\/[^'"]*?)\.js(['"]\s*\))/g,
        '$1.cjs$2',
      );
      await writeFile(p.replace(/\.d\.ts$/, '.d.cts'), out);
    }
  }
}
await twin(join(dist, 'types'));

for (const f of ['browser.js', 'openpartner.global.js', 'server.js']) {
  const buf = await readFile(join(dist, f));
  console.log(`dist/${f}: ${(buf.length / 1024).toFixed(1)} KiB (${(gzipSync(buf).length / 1024).toFixed(1)} KiB gzipped)`);
}
await stat(join(dist, 'types/server/index.d.cts'));
