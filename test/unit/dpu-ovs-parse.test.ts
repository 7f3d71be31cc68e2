import { dpuErrorOf } from './helpers/errors';
import { mapOf, parseTables, rows, uuidSet } from '../../src/dpu/ovs/parse';

describe('ovs-vsctl JSON output from a DPU that answers nonsense', () => {
  it.each([
    ['{}'], ['{"headings":"x","data":[]}'], ['{"headings":[1],"data":[]}'], ['{"headings":["a"],"data":{}}'], ['{"headings":["a"],"data":[["x","y"]]}'],
    ['{"headings":["a"],"data":[5]}'], ['{not json'], ['{"headings":["a"],"data":null}'],
  ])('%s is code 112 naming the problem, never a TypeError', (line) => {
    const err = dpuErrorOf(() => parseTables(`${line}\n`));
    expect(err.code).toBe(112);
    expect(err.message).toMatch(/^unexpected ovs-vsctl output: /);
  });

  it('atoms of the wrong shape read as empty, not as a crash', () => {
    expect(uuidSet(['set', 5] as never)).toEqual([]);
    expect(mapOf(['map', 'x'] as never)).toEqual({});
    expect(mapOf(['map', [5, ['k', 'v']]] as never)).toEqual({ k: 'v' });
    expect(rows(parseTables('{"headings":["a"],"data":[[1]]}\n')[0])).toEqual([{ a: 1 }]);
  });
});
