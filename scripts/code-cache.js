// node scripts/code-cache.js <main.cjs> <out.cache>: V8's code cache for src/main.ts's bundle, made warm.
// A cache made right after compiling holds only the functions V8 compiled eagerly; every other function a standalone
// command calls is parsed and compiled again on each start. So the bundle is compiled exactly as src/sea-main.ts
// compiles it, then runs a standalone ADD whose network config the schema refuses (loading the plugin's modules, the
// config schema and validation, the config error's log line, all in a temp dir: nothing else is touched), and only
// then is the cache taken, with every function compiled so far. Run by scripts/bundle.js in a process of its own,
// with the node binary the SEA is built from (V8 refuses a cache made by another version or with other flags).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Script } = require('node:vm');

const [file, out] = process.argv.slice(2).map((p) => path.resolve(p));
const script = new Script(fs.readFileSync(file, 'utf8'), { filename: file });
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, file, path.dirname(file));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpu-overlay-code-cache-'));
const nodeFile = path.join(dir, 'node.json');
fs.writeFileSync(nodeFile, JSON.stringify({ logFile: path.join(dir, 'log'), stateDir: path.join(dir, 'state'), dpu: { daemonSocket: '' } }));
process.env = { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'code-cache', CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'net1', CNI_PATH: dir, DPU_OVERLAY_NODE_CONFIG: nodeFile };
let answer = '';
process.stdout.write = (text) => {
  answer += text;
  return true;
};

mod.exports.runStandalone(Promise.resolve('{"cniVersion":"1.1.0","name":"code-cache","type":"dpu-overlay"}')).then((code) => {
  fs.rmSync(dir, { recursive: true, force: true });
  // the run must have gone the expected way, else the cache would miss what a standalone command needs
  if (code !== 1 || !answer.startsWith('{"cniVersion":"1.1.0","code":7,')) {
    process.stderr.write(`code-cache: the warm-up ADD answered ${code}: ${answer}\n`);
    process.exit(1);
  }
  fs.writeFileSync(out, script.createCachedData());
  process.exit(0);
});
