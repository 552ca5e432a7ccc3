import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import { parseReferrersIndex } from './parse-referrers-index.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const sig = {
  mediaType: OCI_MANIFEST,
  digest: DIGEST,
  size: 12,
  artifactType: 'application/vnd.example.sig',
};
const body = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

function failure(value: unknown): RegauthError {
  try {
    parseReferrersIndex(body(value), 'referrers of r.example/app@x');
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_REGISTRY');
    return err as RegauthError;
  }
  throw new Error('parseReferrersIndex accepted it');
}

describe('parseReferrersIndex', () => {
  it('returns the descriptors of an image index, fields of their own kept', () => {
    const extra = { ...sig, annotations: { 'org.example': 'y' }, unknownField: 1 };
    expect(
      parseReferrersIndex(body({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [sig, extra] }), 'x'),
    ).toEqual([sig, extra]);
    expect(parseReferrersIndex(body({ schemaVersion: 2, manifests: [] }), 'x')).toEqual([]);
  });

  it('says what is wrong with a body that is no image index, naming the answer', () => {
    expect(failure('<html>oops</html>').message).toMatch(
      /^referrers of r\.example\/app@x: the registry sent an answer that is not an image index \(it is not JSON\)/,
    );
    expect(failure([sig]).message).toContain('(it is not a JSON object)');
    expect(failure(null).message).toContain('(it is not a JSON object)');
    expect(failure({ schemaVersion: 2 }).message).toContain('(it has no "manifests" list)');
    expect(failure({ manifests: { 0: sig } }).message).toContain('(it has no "manifests" list)');
  });

  it('names the entry that is no descriptor: its digest is what a caller fetches next', () => {
    expect(failure({ manifests: [sig, 'x'] }).message).toContain('manifests[1] is not an object: "x"');
    expect(failure({ manifests: [{ ...sig, mediaType: 7 }] }).message).toContain(
      'manifests[0] has no mediaType',
    );
    expect(failure({ manifests: [{ ...sig, digest: undefined }] }).message).toContain(
      'manifests[0] has no digest',
    );
    expect(failure({ manifests: [sig, { ...sig, digest: '../../etc/passwd' }] }).message).toContain(
      'manifests[1] has a digest that is not one: {"mediaType"',
    );
    for (const size of [-1, 1.5, '12', 2 ** 60]) {
      expect(failure({ manifests: [{ ...sig, size }] }).message).toContain('manifests[0] has no valid size');
    }
  });

  it('quotes a bad entry with its control characters escaped and its length capped', () => {
    const message = failure({
      manifests: [{ ...sig, digest: `\u001b]0;owned\u0007${'z'.repeat(500)}` }],
    }).message;
    expect(message).not.toContain('\u001b');
    expect(message).toContain('\\u001b]0;owned\\u0007');
    expect(message.length).toBeLessThan(500);
  });
});
