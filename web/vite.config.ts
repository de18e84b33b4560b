import { defineConfig } from "vite";

// The bundle is embedded in the server binary (crates/server/build.rs):
// hashed file names under /assets, no inline scripts (the server's
// Content-Security-Policy forbids them).
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
});
