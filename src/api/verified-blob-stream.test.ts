import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { verifiedBlobStream } from './verified-blob-stream.js';

async function readAll(stream: ReadableStream<Uint8Array>): Promise<{ chunks: string[]; error?: unknown }> {
  const chunks: string[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { chunks };
      chunks.push(Buffer.from(value).toString());
    }
  } catch (error) {
    return { chunks, error };
  }
}

describe('verifiedBlobStream', () => {
  it('passes the chunks on and closes when the source ends cleanly', async () => {
    async function* source() {
      yield Buffer.from('ab');
      yield Buffer.from('cd');
    }
    expect(await readAll(verifiedBlobStream(source()))).toEqual({ chunks: ['ab', 'cd'] });
  });

  it('errors, never closes, when the source fails its check after the last chunk', async () => {
    async function* source() {
      yield Buffer.from('ab');
      throw new RegauthError('ERR_DIGEST_MISMATCH', 'blob: wrong bytes');
    }
    const { chunks, error } = await readAll(verifiedBlobStream(source()));
    expect(chunks).toEqual(['ab']);
    expect(error).toBeInstanceOf(RegauthError);
    expect((error as RegauthError).code).toBe('ERR_DIGEST_MISMATCH');
  });

  it('stops the source when the signal is aborted or the reader cancels', async () => {
    let finished = 0;
    async function* source() {
      try {
        for (let i = 0; i < 1000; i++) yield Buffer.from(String(i));
      } finally {
        finished++;
      }
    }
    const controller = new AbortController();
    const stream = verifiedBlobStream(source(), controller.signal);
    const reader = stream.getReader();
    expect((await reader.read()).done).toBe(false);
    controller.abort();
    await expect(reader.read()).rejects.toThrow();
    expect(finished).toBe(1);

    const cancelled = verifiedBlobStream(source()).getReader();
    await cancelled.read();
    await cancelled.cancel();
    expect(finished).toBe(2);
  });
});
