/**
 * @jest-environment-options {"customExportConditions": ["node", "require", "default"]}
 */
/**
 * The chat model over the real client and a loopback gateway: a streamed run with a
 * tool card, stop, queued mode change, failures, and opening a stored session.
 */
import WebSocket from 'ws';

import { OpenFoalClient } from '../client';
import { IToolEntry } from '../entries';
import { ChatModel } from '../model';
import { IReceived, StubGateway, until } from './gateway';

describe('ChatModel', () => {
  let stub: StubGateway;
  let client: OpenFoalClient;
  let model: ChatModel;
  let extras: Record<string, unknown>;

  beforeEach(async () => {
    stub = await StubGateway.start();
    client = new OpenFoalClient({
      url: stub.url,
      WebSocket: WebSocket as any,
      initialDelayMs: 20,
      maxDelayMs: 100,
      gapRetryMs: 20
    });
    extras = {};
    model = new ChatModel({ client, runExtras: () => extras });
  });

  afterEach(async () => {
    model.dispose();
    client.dispose();
    await stub.close();
  });

  /** Answer agent.run for session s1 / run r1 and sessions.get with a plain session. */
  function answerRuns(onRun?: (req: IReceived) => void): void {
    stub.onRequest = req => {
      if (req.method === 'agent.run') {
        onRun?.(req);
        stub.reply(req, { runId: 'r1', sessionId: 's1', status: 'accepted' });
      } else if (req.method === 'sessions.get') {
        stub.reply(req, {
          session: {
            id: 's1',
            title: 'Demo',
            runtimeMode: 'local',
            contextUsage: 0.25
          }
        });
      } else if (req.method === 'sessions.list') {
        stub.reply(req, { items: [], nextCursor: null });
      }
    };
  }

  it('streams a run into user, assistant and tool entries', async () => {
    extras = { notebookKernelId: 'k-1', notebookPath: 'a.ipynb' };
    answerRuns();
    expect(await model.send('  plot it  ')).toBe(true);
    const [run] = await stub.waitFor('agent.run');
    expect(run.params).toMatchObject({
      input: 'plot it',
      runtimeMode: 'local',
      notebookKernelId: 'k-1',
      notebookPath: 'a.ipynb'
    });
    expect(run.params.sessionId).toBeUndefined();
    expect(model.session?.id).toBe('s1');
    expect(model.activeRun?.runId).toBe('r1');

    const base = { sessionId: 's1', runId: 'r1', traceId: 't1' };
    stub.push(
      'agent.accepted',
      { ...base, runtimeMode: 'local', model: 'demo' },
      1
    );
    stub.push('agent.delta', { ...base, delta: 'Here is ' }, 2);
    stub.push('agent.delta', { ...base, delta: '**the** plot' }, 3);
    stub.push(
      'agent.tool_call',
      {
        ...base,
        toolCallId: 'c1',
        toolName: 'python.exec',
        args: { code: '1+1' }
      },
      4
    );
    stub.push(
      'agent.tool_result',
      {
        ...base,
        toolCallId: 'c1',
        toolName: 'python.exec',
        status: 'success',
        output: '2',
        durationMs: 12,
        displays: [{ data: { 'image/png': 'iVBOR', 'text/plain': '<Figure>' } }]
      },
      5
    );
    stub.push('agent.delta', { ...base, delta: 'Done.' }, 6);
    stub.push(
      'agent.completed',
      {
        ...base,
        status: 'completed',
        usage: { inputTokens: 3, outputTokens: 4 }
      },
      7
    );
    await until(() => model.activeRun === null, 5000, 'run end');

    const kinds = model.entries.map(e => e.kind);
    expect(kinds).toEqual(['user', 'assistant', 'tool', 'assistant']);
    const [user, first, tool, last] = model.entries as any[];
    expect(user.text).toBe('plot it');
    expect(first.text).toBe('Here is **the** plot');
    expect(first.streaming).toBe(false);
    expect(last.text).toBe('Done.');
    expect(last.streaming).toBe(false);
    expect((tool as IToolEntry).status).toBe('success');
    expect(tool.args).toEqual({ code: '1+1' });
    expect(tool.durationMs).toBe(12);
    expect(tool.displays[0].data['image/png']).toBe('iVBOR');
    await until(() => model.session?.title === 'Demo', 2000, 'session refresh');
    expect(model.session?.contextUsage).toBe(0.25);
  });

  it('stops a run with agent.abort', async () => {
    answerRuns();
    await model.send('long job');
    stub.onRequest = req => {
      if (req.method === 'agent.abort') {
        stub.reply(req, { runId: req.params.runId, status: 'aborted' });
      }
    };
    await model.stop();
    const [abort] = await stub.waitFor('agent.abort');
    expect(abort.params.runId).toBe('r1');
    expect(typeof abort.params.idempotencyKey).toBe('string');
    expect(model.activeRun).toBeNull();
    expect(model.entries[model.entries.length - 1]).toMatchObject({
      kind: 'notice',
      text: 'stopped'
    });
    // The run's own end, marked aborted, adds no second notice and no error.
    const count = model.entries.length;
    stub.push(
      'agent.failed',
      {
        sessionId: 's1',
        runId: 'r1',
        aborted: true,
        error: { code: 'RUNTIME_LOST', message: 'aborted' }
      },
      1
    );
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(model.entries.length).toBe(count);
  });

  it('shows a mode change as queued until runtime.mode_changed', async () => {
    answerRuns();
    await model.send('work');
    stub.onRequest = req => {
      if (req.method === 'runtime.setMode') {
        stub.reply(req, {
          sessionId: 's1',
          runtimeMode: 'cloud',
          status: 'queued-change',
          effectiveOn: 'next_turn'
        });
      }
    };
    await model.setRuntimeMode('cloud');
    expect(model.runtimeMode).toBe('local');
    expect(model.pendingRuntimeMode).toBe('cloud');
    stub.push(
      'runtime.mode_changed',
      { sessionId: 's1', runtimeMode: 'cloud', effectiveAt: 'now' },
      1
    );
    await until(() => model.runtimeMode === 'cloud', 2000, 'mode change');
    expect(model.pendingRuntimeMode).toBeNull();
  });

  it('shows a failed run with its code, message and trace id', async () => {
    answerRuns();
    await model.send('fail please');
    stub.push(
      'agent.failed',
      {
        sessionId: 's1',
        runId: 'r1',
        traceId: 't9',
        error: { code: 'MODEL_UNAVAILABLE', message: 'no model', traceId: 't9' }
      },
      1
    );
    await until(() => model.activeRun === null, 2000, 'run end');
    expect(model.entries[model.entries.length - 1]).toMatchObject({
      kind: 'error',
      code: 'MODEL_UNAVAILABLE',
      message: 'no model',
      traceId: 't9'
    });
  });

  it('shows a refused send as an error and stays idle', async () => {
    stub.onRequest = req =>
      stub.fail(req, {
        code: 'SESSION_BUSY',
        message: 'busy',
        retryable: true,
        traceId: 'tb'
      });
    expect(await model.send('hello')).toBe(false);
    expect(model.busy).toBe(false);
    expect(model.entries[1]).toMatchObject({
      kind: 'error',
      code: 'SESSION_BUSY'
    });
  });

  it('opens a stored session and follows it after its lastSeq', async () => {
    stub.onRequest = req => {
      if (req.method === 'sessions.get' && req.params.includeMessages) {
        stub.reply(req, {
          session: {
            id: 's2',
            title: 'Old',
            runtimeMode: 'cloud',
            compactionCount: 1
          },
          lastSeq: 10,
          messages: [
            { role: 'user', content: 'list files' },
            {
              role: 'assistant',
              content: '',
              tool_calls: [
                { id: 'c1', name: 'file.list', arguments: { path: '.' } }
              ]
            },
            { role: 'tool', tool_call_id: 'c1', content: 'a.txt' },
            { role: 'assistant', content: 'One file.' }
          ]
        });
      } else if (req.method === 'sessions.get') {
        stub.reply(req, { session: { id: 's2' }, events: [] });
      }
    };
    await client.connect();
    await model.openSession('s2');
    expect(model.session?.title).toBe('Old');
    expect(model.runtimeMode).toBe('cloud');
    expect(model.entries.map(e => e.kind)).toEqual([
      'user',
      'tool',
      'assistant'
    ]);
    expect((model.entries[1] as IToolEntry).output).toBe('a.txt');
    expect(client.lastSeq('s2')).toBe(10);

    const base = { sessionId: 's2', runId: 'r5' };
    stub.push('agent.delta', { ...base, delta: 'old' }, 10);
    stub.push('agent.delta', { ...base, delta: 'new' }, 11);
    await until(() => model.entries.length === 4, 2000, 'live delta');
    expect((model.entries[3] as any).text).toBe('new');
  });

  it('applies events of a new session that arrive before its res', async () => {
    stub.onRequest = req => {
      if (req.method === 'agent.run') {
        const base = { sessionId: 's7', runId: 'r7' };
        stub.push('agent.accepted', { ...base, runtimeMode: 'local' }, 1);
        stub.push('agent.delta', { ...base, delta: 'early' }, 2);
        setTimeout(
          () =>
            stub.reply(req, {
              runId: 'r7',
              sessionId: 's7',
              status: 'accepted'
            }),
          30
        );
      } else if (req.method === 'sessions.get') {
        stub.reply(req, { session: { id: 's7', status: 'running' } });
      }
    };
    await model.send('hi');
    await until(() => model.entries.length === 2, 2000, 'early delta');
    expect(model.session?.id).toBe('s7');
    expect((model.entries[1] as any).text).toBe('early');
    expect(model.activeRun?.runId).toBe('r7');
  });
});
