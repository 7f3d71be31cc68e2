// The plugin with a V8 startup snapshot (measured by `npm run bench -- --snapshot`, not shipped): zod and the
// config schema are evaluated when the snapshot is built; main, and with it child_process, pino and ssh2 (which
// Node does not support in snapshots), loads after deserialisation.
import * as v8 from 'node:v8';
import { DEFAULTS } from '../../src/config/schema';

void DEFAULTS;
v8.startupSnapshot.setDeserializeMainFunction(() => {
  require('../../src/entry');
});
