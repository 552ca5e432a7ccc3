/**
 * A Web ReadableStream over verified chunks: the source checks size and digest after its last
 * chunk and throws when they fail, so the stream errors instead of closing, and a reader never
 * sees a wrong blob end as if it were whole. Cancelling the stream, or aborting `signal` (also
 * while nobody reads), stops the source, which releases its connection.
 */
export function verifiedBlobStream(
  source: AsyncGenerator<Uint8Array>,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  let onAbort: (() => void) | undefined;
  const stop = () => {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    void source.return(undefined).catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (signal === undefined) return;
      onAbort = () => {
        controller.error(signal.reason);
        stop();
      };
      signal.addEventListener('abort', onAbort, { once: true });
    },
    async pull(controller) {
      try {
        signal?.throwIfAborted();
        const next = await source.next();
        if (next.done) {
          stop();
          controller.close();
        } else controller.enqueue(next.value);
      } catch (err) {
        stop();
        controller.error(err);
      }
    },
    cancel() {
      stop();
    },
  });
}
