/**
 * The Audit filters as the panel reads them, and the Replay's step kinds.
 */
import { nullTranslator } from '@jupyterlab/translation';

import { readFilters } from '../console/audit';
import { stepKind } from '../console/replay';

const trans = nullTranslator.load('openfoal');

describe('readFilters', () => {
  it('trims text filters and drops empty ones', () => {
    const read = readFilters(
      { actor: ' alice ', action: '', runId: 'run_1', traceId: '  ' },
      trans
    );
    expect(read).toEqual({ filters: { actor: 'alice', runId: 'run_1' } });
  });

  it('sends times as UTC ISO strings', () => {
    const read = readFilters(
      { from: '2026-05-01T10:00:00Z', to: '2026-05-02T10:00:00Z' },
      trans
    );
    expect(read).toEqual({
      filters: {
        from: '2026-05-01T10:00:00.000Z',
        to: '2026-05-02T10:00:00.000Z'
      }
    });
  });

  it('refuses an inverted range and a time that does not parse', () => {
    const inverted = readFilters(
      { from: '2026-05-02T10:00:00Z', to: '2026-05-01T10:00:00Z' },
      trans
    );
    expect(inverted).toEqual({
      error: 'The range is inverted: "From" is after "To".'
    });
    const bad = readFilters({ from: 'yesterday-ish' }, trans);
    expect('error' in bad && bad.error).toContain('yesterday-ish');
  });
});

describe('stepKind', () => {
  it('names tool calls, results and gate events', () => {
    expect(stepKind({ kind: 'event', event: 'agent.tool_call' })).toBe(
      'tool-call'
    );
    expect(stepKind({ kind: 'event', event: 'agent.tool_result' })).toBe(
      'tool-result'
    );
    expect(stepKind({ kind: 'event', event: 'policy-gate.resolved' })).toBe(
      'gate'
    );
    expect(stepKind({ kind: 'event', event: 'agent.completed' })).toBe('event');
    expect(stepKind({ kind: 'message' })).toBe('message');
    expect(stepKind({ kind: 'run' })).toBe('run');
  });
});
