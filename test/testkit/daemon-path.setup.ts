// jest project e2e-daemon: the testkit reads this before the suite loads it (see PLUGIN_PATH in testbed.ts).
process.env.DPUO_PLUGIN_PATH = 'daemon';
