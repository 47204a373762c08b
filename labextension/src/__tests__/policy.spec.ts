/**
 * The Policy panel's pure parts: the patch a save sends, and how a diff value is shown.
 */
import { policyPatch, showValue } from '../console/policy';

describe('policyPatch', () => {
  const base = {
    toolDefault: 'allow',
    highRisk: 'gate',
    bashMode: 'host',
    tools: { 'bash.exec': 'gate' },
    network: { allow: ['example.org'] },
    gateTimeoutSec: 900,
    version: 3,
    updatedBy: 'alice'
  };

  it('sends nothing when nothing changed', () => {
    expect(policyPatch(base, { ...base, version: 9 })).toEqual({});
  });

  it('sends each changed field whole', () => {
    const edited = {
      ...base,
      tools: { 'bash.exec': 'gate', 'web.fetch': 'deny' },
      network: { allow: [] },
      gateTimeoutSec: '1.5'
    };
    expect(policyPatch(base, edited)).toEqual({
      tools: { 'bash.exec': 'gate', 'web.fetch': 'deny' },
      network: { allow: [] },
      gateTimeoutSec: '1.5'
    });
  });
});

describe('showValue', () => {
  it('shows strings as they are and other values as JSON', () => {
    expect(showValue('deny')).toBe('deny');
    expect(showValue({ allow: ['a'] })).toBe('{"allow":["a"]}');
    expect(showValue(undefined)).toBe('—');
  });
});
