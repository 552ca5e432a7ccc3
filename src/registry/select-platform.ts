import { arch, platform } from 'node:os';
import { RegauthError } from '../errors/regauth-error.js';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

interface IndexEntry {
  readonly digest: string;
  readonly mediaType?: string;
  readonly platform?: { os?: string; architecture?: string; variant?: string };
}

const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
};

/** The platform this process runs on, in OCI terms (`linux/amd64`). */
export function hostPlatform(): Platform {
  const os = platform() === 'win32' ? 'windows' : platform();
  const architecture = NODE_ARCH[arch()] ?? arch();
  return architecture === 'arm64' ? { os, architecture, variant: 'v8' } : { os, architecture };
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new RegauthError(
      'ERR_USAGE',
      `invalid platform ${JSON.stringify(text)}: expected os/arch[/variant], such as linux/arm64`,
    );
  }
  const [os = '', architecture = '', variant] = parts;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined).join('/');
}

/**
 * Picks the manifest for `wanted` from an image index: os and architecture must match; a
 * variant, when asked for, must match too (arm64 without a variant counts as v8).
 */
export function selectPlatform(index: { manifests?: readonly IndexEntry[] }, wanted: Platform): IndexEntry {
  const entries = index.manifests ?? [];
  const normalVariant = (p: { architecture?: string; variant?: string }) =>
    p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
  const match = entries.find((e) => {
    const p = e.platform;
    if (!p || p.os !== wanted.os || p.architecture !== wanted.architecture) return false;
    return wanted.variant === undefined || normalVariant(p) === normalVariant(wanted);
  });
  if (!match) {
    const offered = entries
      .map((e) =>
        e.platform
          ? formatPlatform({
              os: e.platform.os ?? '?',
              architecture: e.platform.architecture ?? '?',
              ...(e.platform.variant ? { variant: e.platform.variant } : {}),
            })
          : '?',
      )
      .join(', ');
    throw new RegauthError(
      'ERR_NO_MATCHING_PLATFORM',
      `no manifest for ${formatPlatform(wanted)} in the index (it has: ${offered || 'nothing'}); choose one with --platform`,
    );
  }
  return match;
}
