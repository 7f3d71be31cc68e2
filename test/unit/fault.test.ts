import { FAULT_ENV, FAULT_POINTS, faultPoint } from '../../src/util/fault';

afterEach(() => {
  delete process.env[FAULT_ENV];
});

describe('faultPoint (test-only crash injection)', () => {
  it('is inert without the variable', () => {
    const kill = jest.fn();
    for (const p of FAULT_POINTS) faultPoint(p, kill);
    expect(kill).not.toHaveBeenCalled();
  });

  it('kills only at the point the variable names', () => {
    process.env[FAULT_ENV] = 'add:vf-moved';
    const hits: string[] = [];
    for (const p of FAULT_POINTS) faultPoint(p, () => hits.push(p));
    expect(hits).toEqual(['add:vf-moved']);
  });

  it('lists each point once, ADD points before DEL points', () => {
    expect(new Set(FAULT_POINTS).size).toBe(FAULT_POINTS.length);
    expect(FAULT_POINTS.every((p) => /^(add|del):[a-z-]+$/.test(p))).toBe(true);
  });
});
