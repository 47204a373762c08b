/**
 * The run view renderer: a display and its update render in place, as text only.
 */
import { MimeModel } from '@jupyterlab/rendermime';

import { IRunView, RUN_MIME, runViewFactory } from '../runview';

function view(over: Partial<IRunView>): IRunView {
  return {
    runId: 'run_1',
    sessionId: 'nb_1',
    status: 'running',
    text: '',
    tools: [],
    gates: [],
    error: null,
    ...over
  };
}

describe('RunViewRenderer', () => {
  it('renders a running turn, then its update', async () => {
    const renderer = runViewFactory.createRenderer({
      mimeType: RUN_MIME,
      sanitizer: { sanitize: (s: string) => s },
      resolver: null,
      linkHandler: null,
      latexTypesetter: null
    });
    const tool = {
      toolCallId: 'c1',
      toolName: 'file.read',
      argsPreview: '{"path": "a.txt"}',
      status: ''
    };
    const gate = {
      gateId: 'g1',
      toolName: 'bash.exec',
      risk: 'high risk',
      status: 'pending'
    };
    await renderer.renderModel(
      new MimeModel({
        data: {
          [RUN_MIME]: view({
            status: 'awaiting_approval',
            text: '<b>partial</b>',
            tools: [tool],
            gates: [gate]
          }) as any
        }
      })
    );
    const node = renderer.node;
    expect(node.querySelector('.jp-OpenFoalRun-status')?.textContent).toBe(
      'awaiting approval'
    );
    expect(node.querySelector('.jp-OpenFoalRun-toolName')?.textContent).toBe(
      'file.read'
    );
    expect(node.querySelector('.jp-OpenFoalRun-gate')?.textContent).toContain(
      'pending'
    );
    // the answer is text, never markup
    expect(node.querySelector('b')).toBeNull();
    expect(node.querySelector('.jp-OpenFoalRun-text')?.textContent).toBe(
      '<b>partial</b>'
    );

    await renderer.renderModel(
      new MimeModel({
        data: {
          [RUN_MIME]: view({
            status: 'completed',
            tools: [{ ...tool, status: 'success', durationMs: 3.2 }]
          }) as any
        }
      })
    );
    expect(node.querySelectorAll('.jp-OpenFoalRun-head')).toHaveLength(1);
    expect(node.querySelector('.jp-OpenFoalRun-toolStatus')?.textContent).toBe(
      ' success (3 ms)'
    );
    expect(node.querySelector('.jp-OpenFoalRun-text')).toBeNull();
    renderer.dispose();
  });
});
