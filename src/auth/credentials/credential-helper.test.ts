import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isRegauthError, type RegauthError } from '../../errors/regauth-error.js';
import { credentialHelper, DEFAULT_HELPER_TIMEOUT_MS } from './credential-helper.js';
import { type Sandbox, sandbox, writeHelper, writeStoringHelper } from './testing/fixtures.js';

async function rejection(promise: Promise<unknown>): Promise<RegauthError> {
  try {
    await promise;
  } catch (error) {
    if (isRegauthError(error, 'ERR_CREDENTIAL_HELPER')) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('credentialHelper', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await sandbox();
  });
  afterEach(() => box.cleanup());

  it('waits 10 s by default', () => {
    expect(DEFAULT_HELPER_TIMEOUT_MS).toBe(10_000);
  });

  it('hands the server URL on stdin to `get` and reads Username/Secret', async () => {
    const helper = await writeStoringHelper(box.bin, 'test', {
      'ghcr.io': { Username: 'alice', Secret: 's3cret' },
    });
    const found = await credentialHelper('test', { env: box.env }).get('ghcr.io');
    expect(found).toEqual({ username: 'alice', password: 's3cret' });
    expect(await helper.log()).toEqual(['get ghcr.io']);
  });

  it('reads the Username <token> as an identity token', async () => {
    await writeStoringHelper(box.bin, 'test', { 'ghcr.io': { Username: '<token>', Secret: 'refresh' } });
    expect(await credentialHelper('test', { env: box.env }).get('ghcr.io')).toEqual({
      identityToken: 'refresh',
    });
  });

  it('answers undefined for "credentials not found in native keychain"', async () => {
    await writeStoringHelper(box.bin, 'test');
    expect(await credentialHelper('test', { env: box.env }).get('ghcr.io')).toBeUndefined();
  });

  it('answers undefined when the helper exits 0 without a secret', async () => {
    await writeHelper(box.bin, 'empty', '#!/bin/sh\necho \'{"ServerURL":"x","Username":"","Secret":""}\'\n');
    await writeHelper(box.bin, 'nosecret', '#!/bin/sh\necho \'{"Username":"alice"}\'\n');
    expect(await credentialHelper('empty', { env: box.env }).get('ghcr.io')).toBeUndefined();
    expect(await credentialHelper('nosecret', { env: box.env }).get('ghcr.io')).toBeUndefined();
  });

  it("quotes the first line of the helper's stderr, never its stdout", async () => {
    await writeHelper(
      box.bin,
      'broken',
      '#!/bin/sh\necho \'{"Username":"u","Secret":"leaked-secret"}\'\necho "gpg: decryption failed: No secret key" >&2\necho "second line" >&2\nexit 3\n',
    );
    const error = await rejection(credentialHelper('broken', { env: box.env }).get('ghcr.io'));
    expect(error.message).toBe(
      'credential helper docker-credential-broken failed to get credentials for ghcr.io (exit code 3): ' +
        'gpg: decryption failed: No secret key; check that the helper works, or change credHelpers/credsStore in your docker config',
    );
    expect(error.message).not.toContain('leaked-secret');
  });

  it('says when the helper is not on PATH', async () => {
    const error = await rejection(credentialHelper('missing', { env: box.env }).get('ghcr.io'));
    expect(error.message).toBe(
      'credential helper docker-credential-missing was not found on PATH; install it, or remove it from credHelpers/credsStore in your docker config',
    );
  });

  it('finds helpers on the PATH of the env it is given, not of this process', async () => {
    await writeStoringHelper(box.bin, 'test', { h: { Username: 'u', Secret: 'p' } });
    const error = await rejection(credentialHelper('test', { env: { PATH: '/nonexistent' } }).get('h'));
    expect(error.message).toContain('was not found on PATH');
  });

  it('says when the helper is not executable', async () => {
    await writeFile(join(box.bin, 'docker-credential-noexec'), '#!/bin/sh\n', { mode: 0o644 });
    const error = await rejection(credentialHelper('noexec', { env: box.env }).get('ghcr.io'));
    expect(error.message).toBe(
      'credential helper docker-credential-noexec is not executable; check its permissions',
    );
  });

  it('rejects output that is not the helper JSON, without quoting it', async () => {
    await writeHelper(box.bin, 'chatty', '#!/bin/sh\necho "password is hunter2"\n');
    const error = await rejection(credentialHelper('chatty', { env: box.env }).get('ghcr.io'));
    expect(error.message).toContain(
      'docker-credential-chatty answered "get" for ghcr.io with something other than',
    );
    expect(error.message).not.toContain('hunter2');
  });

  it('gives up on a helper that does not answer in time, even if it left a child running', async () => {
    // `sleep` runs as a child of the shell and keeps the pipes open after the shell is killed.
    await writeHelper(box.bin, 'slow', '#!/bin/sh\nsleep 3\necho "{}"\n');
    const started = Date.now();
    const error = await rejection(credentialHelper('slow', { env: box.env, timeoutMs: 200 }).get('ghcr.io'));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.message).toBe(
      'credential helper docker-credential-slow timed out: no answer to "get" for ghcr.io within 0.2 s; ' +
        'check that it is not waiting for input (a locked keychain, a passphrase prompt) and run it again',
    );
  });

  it('stops a helper that prints more than 1 MiB', async () => {
    await writeHelper(box.bin, 'flood', '#!/bin/sh\nhead -c 3000000 /dev/zero\n');
    const error = await rejection(credentialHelper('flood', { env: box.env }).get('ghcr.io'));
    expect(error.message).toBe(
      'credential helper docker-credential-flood printed more than 1048576 bytes for "get"; check the helper',
    );
  });

  it('stores a password, and an identity token under the user name <token>', async () => {
    const helper = await writeStoringHelper(box.bin, 'test');
    const store = credentialHelper('test', { env: box.env });
    await store.store('ghcr.io', { username: 'alice', password: 'pw' });
    await store.store('https://index.docker.io/v1/', {
      username: 'bob',
      password: 'x',
      identityToken: 'refresh',
    });
    expect(await helper.state()).toEqual({
      'ghcr.io': { Username: 'alice', Secret: 'pw' },
      'https://index.docker.io/v1/': { Username: '<token>', Secret: 'refresh' },
    });
    expect(await helper.log()).toEqual(['store ghcr.io alice', 'store https://index.docker.io/v1/ <token>']);
  });

  it('leaves out a failing store message that echoes its input, which holds the secret', async () => {
    await writeHelper(box.bin, 'echo', '#!/bin/sh\nprintf "bad input: " >&2\ncat >&2\nexit 1\n');
    const store = credentialHelper('echo', { env: box.env });
    for (const password of ['pw-123', 'p"w\\1']) {
      const error = await rejection(store.store('ghcr.io', { username: 'alice', password }));
      expect(error.message).toBe(
        'credential helper docker-credential-echo failed to store credentials for ghcr.io (exit code 1): ' +
          'its message is left out because it repeats the secret it was given; ' +
          'check that the helper works, or change credHelpers/credsStore in your docker config',
      );
    }
  });

  it('quotes a failing store message that does not hold the secret', async () => {
    await writeHelper(
      box.bin,
      'locked',
      '#!/bin/sh\ncat >/dev/null\necho "keychain is locked" >&2\nexit 1\n',
    );
    const error = await rejection(
      credentialHelper('locked', { env: box.env }).store('ghcr.io', { username: 'alice', password: 'pw' }),
    );
    expect(error.message).toContain(
      'failed to store credentials for ghcr.io (exit code 1): keychain is locked;',
    );
  });

  it('erases, and reports false when the helper had nothing', async () => {
    const helper = await writeStoringHelper(box.bin, 'test', { 'ghcr.io': { Username: 'a', Secret: 'b' } });
    const store = credentialHelper('test', { env: box.env });
    expect(await store.erase('ghcr.io')).toBe(true);
    expect(await store.erase('ghcr.io')).toBe(false);
    expect(await helper.state()).toEqual({});
  });

  it('refuses a helper name that is a path', () => {
    expect(() => credentialHelper('../bin/sh')).toThrow('"../bin/sh" is not a credential helper name');
  });
});
