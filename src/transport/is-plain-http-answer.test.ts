import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { isPlainHttpAnswer } from './is-plain-http-answer.js';

const openssl = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('isPlainHttpAnswer', () => {
  it("reads OpenSSL's wrong-version error (node:https EPROTO, undici ERR_SSL_*), also wrapped by the transport", () => {
    const raw = openssl('EPROTO', 'write EPROTO …:SSL routines:ssl3_get_record:wrong version number:…');
    expect(isPlainHttpAnswer(raw)).toBe(true);
    expect(isPlainHttpAnswer(openssl('ERR_SSL_WRONG_VERSION_NUMBER', '…:wrong version number:…'))).toBe(true);
    expect(
      isPlainHttpAnswer(new RegauthError('ERR_NETWORK', 'GET https://127.0.0.1:5000', { cause: raw })),
    ).toBe(true);
  });

  it('never reads a certificate failure, a reset or a refusal as plain HTTP', () => {
    expect(
      isPlainHttpAnswer(openssl('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate')),
    ).toBe(false);
    expect(isPlainHttpAnswer(openssl('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'))).toBe(false);
    expect(isPlainHttpAnswer(openssl('ECONNRESET', 'socket hang up'))).toBe(false);
    expect(isPlainHttpAnswer(openssl('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5000'))).toBe(false);
    expect(isPlainHttpAnswer(openssl('EPROTO', 'sslv3 alert handshake failure'))).toBe(false);
    expect(isPlainHttpAnswer('wrong version number')).toBe(false);
  });
});
