// Jest transform for node_modules packages published only as ES modules (execa 9 and its dependencies): jest's
// CommonJS runtime cannot load them, esbuild rewrites them to CommonJS (the product bundle does the same).
const { transformSync } = require('esbuild');
const { dirname, join } = require('node:path');
const { readFileSync } = require('node:fs');

const typeOfDir = new Map();
function isModulePackage(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (typeOfDir.has(dir)) return typeOfDir.get(dir);
    try {
      const isModule = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type === 'module';
      typeOfDir.set(dir, isModule);
      return isModule;
    } catch {
      // no package.json here: look further up
    }
  }
  return false;
}

module.exports = {
  process(source, file) {
    if (!isModulePackage(file)) return { code: source };
    return { code: transformSync(source, { format: 'cjs', target: 'node20', loader: 'js', sourcefile: file, logLevel: 'silent' }).code };
  },
};
