import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RegauthError } from '../../errors/regauth-error.js';
import { copyImage } from '../../image/copy-image.js';
import { OciLayout } from '../../image/oci-layout.js';
import { pullImage } from '../../image/pull-image.js';
import { pushImage } from '../../image/push-image.js';
import { readBlob } from '../../image/read-blob.js';
import type { TransferListener, TransferSummary } from '../../image/transfer-events.js';
import { formatReference, type ImageReference, parseReference } from '../../reference/parse-reference.js';
import { parsePlatform } from '../../registry/select-platform.js';
import { bufferReclaimer, v8LetsBuffersPileUp } from '../buffer-reclaimer.js';
import { type ClientFlags, clientContext } from '../client-context.js';
import { copyClients } from '../copy-clients.js';
import { terminalSession } from '../terminal-session.js';
import { type ProgressFlags, transferProgress } from '../transfer-progress.js';

export interface TransferFlags extends ClientFlags, ProgressFlags {
  readonly jobs?: number;
  readonly platform?: string;
}

/** `regauth blob <repo>@<digest>`: one blob to stdout, resumed on breaks, verified at the end. */
export async function blobCommand(ref: string, flags: ClientFlags): Promise<void> {
  const reference = parseReference(ref, { defaultTag: false });
  if (reference.digest === undefined) {
    throw new RegauthError(
      'ERR_USAGE',
      `regauth blob takes repository@digest, such as ${reference.registry}/${reference.repository}@sha256:…`,
    );
  }
  const { clients } = await clientContext(flags, reference.registry);
  const client = clients.forRegistry(reference.registry);
  for await (const chunk of readBlob(client, reference.repository, { digest: reference.digest })) {
    if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
  }
}

/** The progress listener, if any, and the buffer reclaimer where V8 needs one, both told of every event. */
function withBufferReclaimer(listener: TransferListener | undefined): TransferListener | undefined {
  if (!v8LetsBuffersPileUp()) return listener;
  const reclaim = bufferReclaimer();
  return listener === undefined
    ? reclaim
    : (event) => {
        listener(event);
        reclaim(event);
      };
}

export async function pullCommand(
  ref: string,
  dir: string | undefined,
  flags: TransferFlags & { allPlatforms?: boolean; format?: string; output?: string },
): Promise<void> {
  // Every argument is checked before anything is sent or drawn.
  const reference = parseReference(ref);
  if (flags.allPlatforms && flags.platform !== undefined) {
    throw new RegauthError('ERR_USAGE', '--platform and --all-platforms exclude each other');
  }
  if (flags.allPlatforms && flags.format === 'docker-archive') {
    throw new RegauthError(
      'ERR_USAGE',
      '--all-platforms cannot go into a docker archive, which holds one image: pull into an OCI layout folder, or pick one --platform',
    );
  }
  if (flags.format !== undefined && flags.format !== 'oci' && flags.format !== 'docker-archive') {
    throw new RegauthError('ERR_USAGE', `--format must be oci or docker-archive, not ${flags.format}`);
  }
  const archive = flags.format === 'docker-archive';
  const destination = archive ? flags.output : dir;
  if (destination === undefined) {
    throw new RegauthError(
      'ERR_USAGE',
      archive
        ? '--format docker-archive needs --output FILE.tar'
        : 'regauth pull needs a folder for the OCI layout',
    );
  }
  if (!archive && (await stat(destination).catch(() => undefined))?.isFile()) {
    throw new RegauthError(
      'ERR_USAGE',
      `${destination} is a file: pull writes an OCI image layout into a folder (created when missing); ` +
        'give a folder, or --format docker-archive --output FILE.tar for a tar',
    );
  }
  const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  const { clients } = await clientContext(flags, reference.registry);
  const client = clients.forRegistry(reference.registry);
  const target = reference.digest ?? reference.tag ?? 'latest';
  const progress = await transferProgress(flags);
  const onEvent = withBufferReclaimer(progress.listener);
  if (archive) {
    const { pullDockerArchive } = await import('../../image/docker-archive.js');
    // Ctrl-C or SIGTERM ends the process where it stands: the half-written tar goes with it.
    // Random as well as the pid: one left by a killed run (pids repeat in containers) never blocks.
    const partialPath = `${destination}.${process.pid}-${randomBytes(4).toString('hex')}.partial`;
    const forget = terminalSession().onRestore(() => rmSync(partialPath, { force: true }));
    const summary = await pullDockerArchive(client, reference.repository, target, destination, {
      partialPath,
      // A pull by digest alone names no tag: the image loads untagged, as `docker save ID` makes it.
      ...(reference.tag === undefined
        ? {}
        : {
            tag: `${reference.registry === 'docker.io' ? '' : `${reference.registry}/`}${reference.repository}:${reference.tag}`,
          }),
      ...(platform === undefined ? {} : { platform }),
      ...(onEvent === undefined ? {} : { onEvent }),
    });
    forget();
    progress.finish(summary);
    return;
  }
  const summary = await pullImage(client, reference.repository, target, destination, {
    ...(platform === undefined ? {} : { platform }),
    ...(flags.allPlatforms ? { allPlatforms: true } : {}),
    ...(reference.tag === undefined ? {} : { refName: reference.tag }),
    ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
    ...(onEvent === undefined ? {} : { onEvent }),
  });
  progress.finish(summary);
}

/**
 * What was pushed, as `registry/repository:tag@digest` on stdout (what crane push prints), for
 * scripts to pin; --json prints the whole summary instead.
 */
function printPushed(destination: ImageReference, summary: TransferSummary, flags: ProgressFlags): void {
  if (!flags.json) process.stdout.write(`${formatReference({ ...destination, digest: summary.digest })}\n`);
}

/** `DIR` or `DIR:NAME` (the image's ref.name in the layout), as skopeo's oci: transport takes it. */
function splitLayoutArg(arg: string): { dir: string; refName?: string } {
  const colon = arg.lastIndexOf(':');
  if (
    colon > 0 &&
    !existsSync(join(arg, 'oci-layout')) &&
    existsSync(join(arg.slice(0, colon), 'oci-layout'))
  ) {
    return { dir: arg.slice(0, colon), refName: arg.slice(colon + 1) };
  }
  return { dir: arg };
}

export async function pushCommand(layoutArg: string, ref: string, flags: TransferFlags): Promise<void> {
  const reference = parseReference(ref);
  if (layoutArg.startsWith('oci:') && !existsSync(layoutArg)) {
    throw new RegauthError(
      'ERR_USAGE',
      `"oci:" is the OCI layout transport of skopeo; regauth push takes the layout's folder itself: drop the prefix (${JSON.stringify(layoutArg.slice(4))})`,
    );
  }
  const { dir, refName } = splitLayoutArg(layoutArg);
  // A folder that is no layout is said before anything is sent or drawn.
  await OciLayout.open(dir);
  const { clients } = await clientContext(flags, reference.registry);
  const progress = await transferProgress(flags);
  const onEvent = withBufferReclaimer(progress.listener);
  const summary = await pushImage(
    dir,
    clients.forRegistry(reference.registry),
    reference.repository,
    reference.tag ?? reference.digest ?? 'latest',
    {
      ...(refName === undefined ? {} : { refName }),
      ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
      ...(onEvent === undefined ? {} : { onEvent }),
    },
  );
  progress.finish(summary);
  printPushed(reference, summary, flags);
}

export async function copyCommand(srcRef: string, dstRef: string, flags: TransferFlags): Promise<void> {
  const src = parseReference(srcRef);
  const dst = parseReference(dstRef);
  const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  const clients = await copyClients(flags, src.registry, dst.registry);
  const progress = await transferProgress(flags);
  const onEvent = withBufferReclaimer(progress.listener);
  const summary = await copyImage(
    {
      client: clients.src,
      repository: src.repository,
      reference: src.digest ?? src.tag ?? 'latest',
    },
    {
      client: clients.dst,
      repository: dst.repository,
      reference: dst.tag ?? dst.digest ?? 'latest',
    },
    {
      ...(platform === undefined ? {} : { platform }),
      ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
      ...(onEvent === undefined ? {} : { onEvent }),
    },
  );
  progress.finish(summary);
  printPushed(dst, summary, flags);
}
