// Builds web/dist from web/src with esbuild: deterministic (fixed names, no hashes, no dates),
// so `scripts/web-build.sh && git diff --exit-code web/dist` checks a committed bundle.
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";

const dist = "dist";
rmSync(dist, { recursive: true, force: true });
mkdirSync(`${dist}/assets`, { recursive: true });

await esbuild.build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "iife",
  target: ["es2022"],
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  outfile: `${dist}/assets/app.js`,
  logLevel: "warning",
});

const css = [
  "node_modules/@xterm/xterm/css/xterm.css",
  "node_modules/asciinema-player/dist/bundle/asciinema-player.css",
  "src/style.css",
].map((f) => `/* ${f.replace("node_modules/", "")} */\n` + readFileSync(f, "utf8")).join("\n");
const out = await esbuild.transform(css, { loader: "css", minify: true, legalComments: "inline" });
writeFileSync(`${dist}/assets/app.css`, out.code);
writeFileSync(`${dist}/index.html`, readFileSync("src/index.html", "utf8"));
