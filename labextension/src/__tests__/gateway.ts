/**
 * A protocol-speaking gateway on a loopback port for the client and model tests.
 *
 * It answers `connect` itself and hands every other request to the test, which
 * answers, pushes events or drops connections as the scenario needs.
 */
import { AddressInfo } from 'net';
import WebSocket, { WebSocketServer } from 'ws';

/** A request the stub received, with the socket it came on. */
export interface IReceived {
  socket: WebSocket;
  id: string;
  method: string;
  params: Record<string, any>;
}

/** What the stub does on `connect`. */
export type ConnectReply =
  | { ok: true; payload?: Record<string, unknown> }
  | { ok: false; error: Record<string, unknown> };

/** A loopback WebSocket server speaking the gateway's frames. */
export class StubGateway {
  static async start(): Promise<StubGateway> {
    const stub = new StubGateway();
    await new Promise<void>(resolve => stub._server.once('listening', resolve));
    return stub;
  }

  /** The ws:// URL of the stub. */
  get url(): string {
    const { port } = this._server.address() as AddressInfo;
    return `ws://127.0.0.1:${port}/openfoal/ws`;
  }

  /** Every request received so far, `connect` included, in arrival order. */
  readonly received: IReceived[] = [];

  /** Sockets that completed `connect`, oldest first. */
  readonly connections: WebSocket[] = [];

  /** How `connect` is answered. */
  connectReply: ConnectReply = { ok: true };

  /** Called for every request but `connect`; default: no answer. */
  onRequest: (req: IReceived) => void = () => undefined;

  /** Answer a request with a payload. */
  reply(req: IReceived, payload: Record<string, unknown>): void {
    req.socket.send(
      JSON.stringify({ type: 'res', id: req.id, ok: true, payload })
    );
  }

  /** Answer a request with an error body. */
  fail(req: IReceived, error: Record<string, unknown>): void {
    req.socket.send(
      JSON.stringify({ type: 'res', id: req.id, ok: false, error })
    );
  }

  /** Push an event on the newest connection. */
  push(event: string, payload: Record<string, unknown>, seq?: number): void {
    const socket = this.connections[this.connections.length - 1];
    socket.send(JSON.stringify({ type: 'event', event, payload, seq }));
  }

  /** Close every open connection, as a server restart would. */
  dropAll(): void {
    for (const socket of this.connections) {
      socket.terminate();
    }
  }

  /** Wait until `count` requests of `method` arrived. */
  async waitFor(
    method: string,
    count = 1,
    timeoutMs = 5000
  ): Promise<IReceived[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.filter(r => r.method === method);
      if (found.length >= count) {
        return found;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${count} ${method}`);
      }
      await new Promise(resolve => setTimeout(resolve, 10));
    }
  }

  /** Stop the server. */
  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>(resolve => this._server.close(() => resolve()));
  }

  private constructor() {
    this._server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this._server.on('connection', socket => {
      socket.on('message', data => {
        const frame = JSON.parse(String(data));
        const req: IReceived = {
          socket,
          id: frame.id,
          method: frame.method,
          params: frame.params ?? {}
        };
        this.received.push(req);
        if (req.method === 'connect') {
          const reply = this.connectReply;
          if (reply.ok) {
            this.connections.push(socket);
            this.reply(req, {
              protocolVersion: '1.0.0',
              user: { name: 'tester' },
              role: 'local',
              features: [],
              ...(reply.payload ?? {})
            });
          } else {
            this.fail(req, reply.error);
          }
          return;
        }
        this.onRequest(req);
      });
    });
  }

  private _server: WebSocketServer;
}

/** Wait until `check` holds, polling. */
export async function until(
  check: () => boolean,
  timeoutMs = 5000,
  what = 'condition'
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}
