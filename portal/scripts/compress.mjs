// After `vite build`: a gzip sibling (`<file>.gz`) for each text asset, which the gateway
// serves to clients that take gzip (OP_PORTAL_DIR). Level 9: built once, served often.
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
const walk = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
let n = 0;
for (const file of walk(dist)) {
  if (!/\.(js|css|svg|json|txt|webmanifest)$/.test(file)) continue;
  writeFileSync(file + '.gz', gzipSync(readFileSync(file), { level: 9 }));
  n++;
}
console.log(`portal: ${n} files gzipped in dist/`);
