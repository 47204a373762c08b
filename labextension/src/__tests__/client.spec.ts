/**
 * @jest-environment-options {"customExportConditions": ["node", "require", "default"]}
 */
/**
 * The gateway client against a loopback WebSocket server: handshake, correlation,
 * idempotency keys, seq dedupe, gap catch-up and reconnect resume.
 */
import WebSocket from 'ws';

import { OpenFoalClient } from '../client';
import { GatewayError, IEventFrame } from '../protocol';
import { IReceived, StubGateway, until } from './gateway';

describe('OpenFoalClient', () => {
  let stub: StubGateway;
  let client: OpenFoalClient;
  let events: IEventFrame[];

  beforeEach(async () => {
    stub = await StubGateway.start();
    client = new OpenFoalClient({
      url: stub.url,
      WebSocket: WebSocket as any,
      clientName: 'test-client',
      clientVersion: '9.9',
      initialDelayMs: 20,
      maxDelayMs: 100,
      requestTimeoutMs: 3000,
      gapRetryMs: 20
    });
    events = [];
    client.eventReceived.connect((_, frame) => {
      events.push(frame);
    });
  });

  afterEach(async () => {
    client.dispose();
    await stub.close();
  });

  it('sends connect first and resolves with its payload', async () => {
    const info = await client.connect();
    expect(info.protocolVersion).toBe('1.0.0');
    expect(client.status).toBe('open');
    expect(stub.received[0].method).toBe('connect');
    expect(stub.received[0].params.client).toEqual({
      name: 'test-client',
      version: '9.9'
    });
    expect(stub.received[0].params.protocol).toEqual({ min: '1', max: '1' });
  });

  it('correlates answers by id, whatever their order', async () => {
    const held: IReceived[] = [];
    stub.onRequest = req => held.push(req);
    const first = client.request('sessions.get', { sessionId: 'a' });
    const second = client.request('sessions.get', { sessionId: 'b' });
    await until(() => held.length === 2);
    stub.reply(held[1], { session: { id: 'b' } });
    stub.reply(held[0], { session: { id: 'a' } });
    expect((await first).session.id).toBe('a');
    expect((await second).session.id).toBe('b');
    expect(held[0].id).not.toBe(held[1].id);
  });

  it('rejects with the error body of a failed answer', async () => {
    stub.onRequest = req =>
      stub.fail(req, {
        code: 'SESSION_BUSY',
        message: 'a run is in progress',
        retryable: true,
        traceId: 't-1'
      });
    const error = await client
      .request('agent.run', { input: 'hi', sessionId: 's' })
      .catch(e => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.code).toBe('SESSION_BUSY');
    expect(error.traceId).toBe('t-1');
    expect(error.retryable).toBe(true);
  });

  it('adds an idempotency key to side-effect methods only', async () => {
    stub.onRequest = req => stub.reply(req, {});
    await client.request('agent.run', { input: 'x' });
    await client.request('runtime.setMode', {
      sessionId: 's',
      runtimeMode: 'cloud'
    });
    await client.request('sessions.list', {});
    const [run, setMode, list] = stub.received.slice(1);
    expect(typeof run.params.idempotencyKey).toBe('string');
    expect(typeof setMode.params.idempotencyKey).toBe('string');
    expect(run.params.idempotencyKey).not.toBe(setMode.params.idempotencyKey);
    expect(list.params.idempotencyKey).toBeUndefined();
  });

  it('drops events already delivered, by seq', async () => {
    await client.connect();
    client.track('s1', 0);
    for (const seq of [1, 2, 2, 1, 3]) {
      stub.push(
        'agent.delta',
        { sessionId: 's1', runId: 'r', delta: `${seq}` },
        seq
      );
    }
    await until(() => events.length >= 3);
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(events.map(e => e.seq)).toEqual([1, 2, 3]);
    expect(client.lastSeq('s1')).toBe(3);
  });

  it('fills a gap from sessions.get afterSeq, in order', async () => {
    stub.onRequest = req => {
      if (req.method === 'sessions.get') {
        stub.reply(req, {
          session: { id: 's1' },
          events: [3, 2].map(seq => ({
            event: 'agent.delta',
            payload: { sessionId: 's1', delta: `${seq}` },
            seq
          }))
        });
      }
    };
    await client.connect();
    client.track('s1', 0);
    stub.push('agent.delta', { sessionId: 's1', delta: '1' }, 1);
    stub.push('agent.delta', { sessionId: 's1', delta: '4' }, 4);
    await until(() => events.length >= 4);
    expect(events.map(e => e.seq)).toEqual([1, 2, 3, 4]);
    const [get] = await stub.waitFor('sessions.get');
    expect(get.params).toMatchObject({ sessionId: 's1', afterSeq: 1 });
  });

  it('reconnects after the server drops it and resumes after lastSeq', async () => {
    const resumed = jest.fn();
    client.resumed.connect(resumed);
    await client.connect();
    client.track('s1', 0);
    stub.push('agent.delta', { sessionId: 's1', delta: 'a' }, 1);
    stub.push('agent.delta', { sessionId: 's1', delta: 'b' }, 2);
    await until(() => events.length === 2);

    stub.onRequest = req => {
      if (req.method === 'sessions.get') {
        // The store has 2 (already seen), 3 and 4: only 3 and 4 are new.
        stub.reply(req, {
          session: { id: 's1' },
          events: [2, 3, 4].map(seq => ({
            event: 'agent.delta',
            payload: { sessionId: 's1', delta: `${seq}` },
            seq
          }))
        });
      }
    };
    stub.dropAll();
    await until(() => client.status === 'reconnecting', 2000, 'reconnecting');
    await until(() => resumed.mock.calls.length === 1, 5000, 'resumed');
    expect(client.status).toBe('open');
    expect(stub.connections.length).toBe(2);
    const [get] = await stub.waitFor('sessions.get');
    expect(get.params).toMatchObject({ sessionId: 's1', afterSeq: 2 });
    expect(events.map(e => e.seq)).toEqual([1, 2, 3, 4]);
    expect(events.map(e => e.payload.delta)).toEqual(['a', 'b', '3', '4']);
  });

  it('resends a pending request after a reconnect with the same key', async () => {
    let runs = 0;
    stub.onRequest = req => {
      if (req.method !== 'agent.run') {
        return;
      }
      runs += 1;
      if (runs === 1) {
        req.socket.terminate();
      } else {
        stub.reply(req, { runId: 'r1', sessionId: 's1', status: 'accepted' });
      }
    };
    const res = await client.request('agent.run', { input: 'hello' });
    expect(res.runId).toBe('r1');
    const sent = await stub.waitFor('agent.run', 2);
    expect(sent[0].params.idempotencyKey).toBe(sent[1].params.idempotencyKey);
    expect(sent[0].params.input).toBe('hello');
  });

  it('stops on UNAUTHORIZED instead of retrying', async () => {
    stub.connectReply = {
      ok: false,
      error: { code: 'UNAUTHORIZED', message: 'no token', traceId: 't' }
    };
    const error = await client.connect().catch(e => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.code).toBe('UNAUTHORIZED');
    expect(client.status).toBe('closed');
    await new Promise(resolve => setTimeout(resolve, 150));
    expect(stub.received.filter(r => r.method === 'connect').length).toBe(1);
  });

  it('times out a request that gets no answer', async () => {
    const error = await client
      .request('sessions.list', {}, { timeoutMs: 100 })
      .catch(e => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('sessions.list');
  });
});
