import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { seaApi } from './util/sea';

/**
 * src/main.ts as the product's entry bundle loads it (scripts/bundle.js puts this file in place of './main' there;
 * source runs, jest and run-ts keep the plain require). main.ts is a second bundle: one function expression
 * taking a CommonJS module's arguments. Inside the SEA it is an asset, compiled with the V8 code cache made warm
 * for it at build time by the same node binary (scripts/code-cache.js); as plain files (node build/dpu-overlay.cjs)
 * it is the file beside the entry, without a cache.
 */

// Set by scripts/bundle.js from scripts/sea.js's asset names.
declare const __MAIN_ASSET__: string;
declare const __MAIN_CACHE_ASSET__: string;
declare const __MAIN_FILE__: string;

type ModuleFunction = (exports: object, req: NodeJS.Require, mod: { exports: object }, filename: string, dirname: string) => void;

function loadMain(): typeof import('./main') {
  const sea = seaApi();
  const filename = join(__dirname, __MAIN_FILE__);
  let script: Script;
  if (sea) {
    const cachedData = Buffer.from(sea.getAsset(__MAIN_CACHE_ASSET__));
    script = new Script(sea.getAsset(__MAIN_ASSET__, 'utf8'), { filename, cachedData });
    // V8 refuses a cache made by another node binary or with other V8 flags: still correct, only slower to load.
    // scripts/build.sh sets this to prove the shipped cache is taken.
    if (script.cachedDataRejected && process.env.DPU_OVERLAY_REQUIRE_CODE_CACHE === '1') throw new Error(`V8 rejected the code cache of ${__MAIN_ASSET__}`);
  } else {
    script = new Script(readFileSync(filename, 'utf8'), { filename });
  }
  const mod = { exports: {} };
  // The SEA's require serves built-ins only, all the bundle asks for.
  (script.runInThisContext() as ModuleFunction)(mod.exports, require, mod, filename, __dirname);
  return mod.exports as typeof import('./main');
}

export = loadMain();
