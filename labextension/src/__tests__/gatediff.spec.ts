/**
 * The diff of a gated `file.write` on its card: lines classed by kind, notes instead of a diff.
 */
import { nullTranslator } from '@jupyterlab/translation';

import { diffNodes } from '../widgets/gatecard';

const trans = nullTranslator.load('openfoal');

describe('diffNodes', () => {
  it('classes file headers, hunks, removed, added and context lines', () => {
    const nodes = diffNodes(trans, {
      kind: 'file.diff',
      path: 'notes.txt',
      exists: true,
      diff: '--- a/notes.txt\n+++ b/notes.txt\n@@ -1,2 +1,2 @@\n alpha\n-beta\n+gamma\n',
      added: 1,
      removed: 1
    });
    expect(nodes[0].textContent).toBe('Changes to notes.txt · +1 -1');
    const pre = nodes[1];
    expect(pre.getAttribute('aria-label')).toBe('Diff of notes.txt');
    const lines = Array.from(pre.children).map(child => [
      child.className,
      child.textContent
    ]);
    expect(lines).toEqual([
      ['jp-OpenFoal-diffFile', '--- a/notes.txt'],
      ['jp-OpenFoal-diffFile', '+++ b/notes.txt'],
      ['jp-OpenFoal-diffHunk', '@@ -1,2 +1,2 @@'],
      ['jp-OpenFoal-diffContext', ' alpha'],
      ['jp-OpenFoal-diffDel', '-beta'],
      ['jp-OpenFoal-diffAdd', '+gamma']
    ]);
  });

  it('says why there is no diff, or that nothing changes, or that it was cut', () => {
    const refused = diffNodes(trans, {
      kind: 'file.diff',
      path: '../x',
      note: "path '../x' refused"
    });
    expect(refused.map(n => n.textContent)).toEqual([
      'New file ../x',
      "No diff: path '../x' refused"
    ]);
    const same = diffNodes(trans, {
      kind: 'file.diff',
      path: 'a',
      exists: true,
      diff: ''
    });
    expect(same[1].textContent).toBe('The file would stay the same.');
    const cut = diffNodes(trans, {
      kind: 'file.diff',
      path: 'big',
      diff: '+a\n',
      added: 1,
      truncated: true
    });
    expect(cut[0].textContent).toBe('New file big · +1 -0');
    expect(cut[2].textContent).toContain('cut');
  });
});
