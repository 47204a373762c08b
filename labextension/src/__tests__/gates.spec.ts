/**
 * @jest-environment-options {"customExportConditions": ["node", "require", "default"]}
 */
/**
 * Gates in the client: reading a gate's reason, the chat entry following `policy-gate.*`
 * events, and `policy-gate.resolve` with its idempotency key over a loopback gateway.
 */
import WebSocket from 'ws';

import { OpenFoalClient } from '../client';
import { ChatEntry, IToolEntry, applyRunEvent } from '../entries';
import {
  IGateItem,
  allowToolForSession,
  gateWhy,
  mainArgument,
  resolveGate
} from '../gates';
import { GatewayError } from '../protocol';
import { StubGateway } from './gateway';

const GATE: IGateItem = {
  gateId: 'g1',
  sessionId: 's1',
  runId: 'r1',
  toolCallId: 'c1',
  toolName: 'bash.exec',
  args: { command: 'ls -la' },
  risk: 'high risk: the shell runs on the host',
  status: 'pending'
};

describe('gateWhy', () => {
  it('names the rule and the risk of each policy reason', () => {
    expect(gateWhy('high risk: runs on the host')).toEqual({
      rule: 'highRisk',
      risk: 'runs on the host'
    });
    expect(
      gateWhy('policy rule for http.request: gate (high risk: has a body)')
    ).toEqual({ rule: 'tools.http.request', risk: 'has a body' });
    expect(gateWhy('policy rule for file.read: gate')).toEqual({
      rule: 'tools.file.read',
      risk: ''
    });
    expect(gateWhy('policy default: gate')).toEqual({
      rule: 'toolDefault',
      risk: ''
    });
  });

  it('picks the argument a person must read', () => {
    expect(mainArgument({ code: 'print(1)', timeout: 3 })).toEqual({
      name: 'code',
      value: 'print(1)'
    });
    expect(mainArgument({ url: 'https://example.org' })?.name).toBe('url');
    expect(mainArgument({ path: 'a.txt', content: 'x' })?.name).toBe('path');
    expect(mainArgument({ n: 1 })).toBeNull();
  });
});

describe('gate events on a tool entry', () => {
  it('follows requested, then resolved elsewhere', () => {
    const entries: ChatEntry[] = [];
    applyRunEvent(entries, {
      event: 'agent.tool_call',
      payload: {
        sessionId: 's1',
        runId: 'r1',
        toolCallId: 'c1',
        toolName: 'bash.exec',
        args: GATE.args
      }
    });
    const requested = applyRunEvent(entries, {
      event: 'policy-gate.requested',
      payload: { sessionId: 's1', gate: GATE }
    });
    expect(requested.updated).toEqual([0]);
    const tool = entries[0] as IToolEntry;
    expect(tool.status).toBe('waiting_gate');
    expect(tool.gate?.status).toBe('pending');
    applyRunEvent(entries, {
      event: 'policy-gate.resolved',
      payload: {
        sessionId: 's1',
        gate: { ...GATE, status: 'expired', resolvedBy: 'system' }
      }
    });
    expect(tool.gate?.status).toBe('expired');
    expect(tool.status).toBe('rejected');
  });
});

describe('resolveGate', () => {
  let stub: StubGateway;
  let client: OpenFoalClient;

  beforeEach(async () => {
    stub = await StubGateway.start();
    client = new OpenFoalClient({ url: stub.url, WebSocket: WebSocket as any });
  });

  afterEach(async () => {
    client.dispose();
    await stub.close();
  });

  it('sends the decision, the trimmed reason and the given key', async () => {
    stub.onRequest = req =>
      stub.reply(req, {
        gate: { ...GATE, status: 'rejected', reason: req.params.reason }
      });
    const gate = await resolveGate(client, {
      gateId: 'g1',
      decision: 'reject',
      reason: '  not now ',
      idempotencyKey: 'k-42'
    });
    const [req] = await stub.waitFor('policy-gate.resolve');
    expect(req.params).toEqual({
      gateId: 'g1',
      decision: 'reject',
      reason: 'not now',
      idempotencyKey: 'k-42'
    });
    expect(gate.status).toBe('rejected');
  });

  it('returns the gate decided elsewhere, and rejects other errors', async () => {
    stub.onRequest = req => {
      if (req.params.gateId === 'g1') {
        stub.fail(req, {
          code: 'VERSION_CONFLICT',
          message: 'gate already approved by alice',
          details: { gate: { ...GATE, status: 'approved' } }
        });
      } else {
        stub.fail(req, {
          code: 'FORBIDDEN',
          message: 'not yours',
          traceId: 't-9'
        });
      }
    };
    const conflicts: IGateItem[] = [];
    const gate = await resolveGate(client, {
      gateId: 'g1',
      decision: 'reject',
      idempotencyKey: 'k1',
      onConflict: first => conflicts.push(first)
    });
    expect(gate.status).toBe('approved');
    expect(conflicts.map(g => g.status)).toEqual(['approved']);
    const failure = resolveGate(client, {
      gateId: 'g2',
      decision: 'approve',
      idempotencyKey: 'k2'
    });
    await expect(failure).rejects.toBeInstanceOf(GatewayError);
    await expect(failure).rejects.toMatchObject({
      body: { code: 'FORBIDDEN', traceId: 't-9' }
    });
  });
});

describe('allowToolForSession', () => {
  let stub: StubGateway;
  let client: OpenFoalClient;

  beforeEach(async () => {
    stub = await StubGateway.start();
    client = new OpenFoalClient({ url: stub.url, WebSocket: WebSocket as any });
  });

  afterEach(async () => {
    client.dispose();
    await stub.close();
  });

  it('starts a never-written scope from no rules, and keeps an own scope', async () => {
    let stored: any = null;
    stub.onRequest = req => {
      if (req.method === 'policy.get') {
        stub.reply(req, {
          policy: stored ?? {
            scopeKey: 'default',
            version: 7,
            tools: { 'file.read': 'deny' }
          }
        });
      } else if (req.method === 'policy.update') {
        stored = {
          scopeKey: req.params.scopeKey,
          version: (stored?.version ?? 0) + 1,
          tools: req.params.patch.tools
        };
        stub.reply(req, { policy: stored });
      }
    };
    await allowToolForSession(client, 's1', 'bash.exec');
    await allowToolForSession(client, 's1', 'python.exec');
    const updates = await stub.waitFor('policy.update', 2);
    expect(updates[0].params).toMatchObject({
      scopeKey: 'session:s1',
      expectedVersion: 0,
      patch: { tools: { 'bash.exec': 'allow' } }
    });
    expect(updates[1].params).toMatchObject({
      expectedVersion: 1,
      patch: { tools: { 'bash.exec': 'allow', 'python.exec': 'allow' } }
    });
    expect(updates[0].params.idempotencyKey).toBeTruthy();
  });
});
