// The portal's build: one entry (index.html), hashed files under assets/, relative URLs (the
// gateway sets the page's <base href> to where the portal lives: /t/<slug>/ or /).
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    // Nothing inlined as data: URLs or inline code: the CSP allows scripts and styles
    // from the origin only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
