/**
 * What the transport reports to `--trace`: secrets already redacted and a server's control
 * characters escaped, so safe to print.
 */
export type TraceEvent =
  | {
      readonly kind: 'request';
      readonly method: string;
      readonly url: string;
      readonly headers: Readonly<Record<string, string | string[]>>;
      readonly body?: string;
    }
  | {
      readonly kind: 'response';
      readonly method: string;
      readonly url: string;
      readonly status: number;
      readonly headers: Readonly<Record<string, string | string[]>>;
      readonly ms: number;
    }
  | { readonly kind: 'body'; readonly url: string; readonly text: string }
  | {
      readonly kind: 'retry';
      readonly url: string;
      readonly attempt: number;
      readonly waitMs: number;
      readonly reason: string;
    }
  | { readonly kind: 'note'; readonly text: string };

/** Receives the trace events of every exchange; the CLI's `--trace` prints them. */
export type Tracer = (event: TraceEvent) => void;
