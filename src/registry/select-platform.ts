import { arch, platform } from 'node:os';
import { RegauthError } from '../errors/regauth-error.js';

/** An image's platform as image indexes and image configs describe it (image-spec image-index.md). */
export interface Platform {
  /** GOOS values: `linux`, `windows`, `darwin`. */
  readonly os: string;
  /** GOARCH values: `amd64`, `arm64`, `arm`, `s390x`. */
  readonly architecture: string;
  /** The CPU variant where it matters: `v7` for arm, `v8` for arm64. */
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

/** `os/architecture[/variant]`, the form `--platform` takes and parsePlatform reads. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined).join('/');
}

/** arm64 without a variant is arm64/v8 (image-spec image-index.md, platform variants). */
function normalVariant(p: { architecture?: string; variant?: string }): string | undefined {
  return p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
}

/**
 * Whether a platform (of an index entry, or of an image config) is `wanted`: os and architecture
 * must match; a variant, when asked for, must match too (arm64 without a variant counts as v8).
 */
export function platformMatches(
  p: { os?: string; architecture?: string; variant?: string },
  wanted: Platform,
): boolean {
  if (p.os !== wanted.os || p.architecture !== wanted.architecture) return false;
  return wanted.variant === undefined || normalVariant(p) === normalVariant(wanted);
}

/**
 * Picks the manifest for `wanted` from an image index (see platformMatches). `what` names the
 * index in the error, which lists the platforms it has.
 */
export function selectPlatform(
  index: { manifests?: readonly IndexEntry[] },
  wanted: Platform,
  what = 'the index',
): IndexEntry {
  const entries = index.manifests ?? [];
  const match = entries.find((e) => e.platform !== undefined && platformMatches(e.platform, wanted));
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
      `no manifest for ${formatPlatform(wanted)} in ${what} (it has: ${offered || 'nothing'})`,
      { hint: { kind: 'platform', offered: offered === '' ? [] : offered.split(', ') } },
    );
  }
  return match;
}

/**
 * Refuses a single-platform image whose config names another platform than `wanted`. Asking for
 * a platform and getting another one silently leaves the wrong binaries in place
 * (redhat-openshift-ecosystem/openshift-preflight#1463); containers/image only warns ("image
 * platform (…) does not match the expected platform"). A config that names no platform (an
 * artifact) is not refused.
 */
export function checkImagePlatform(
  config: { os?: unknown; architecture?: unknown; variant?: unknown },
  wanted: Platform,
  what: string,
): void {
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const os = text(config.os);
  const architecture = text(config.architecture);
  if (os === undefined && architecture === undefined) return;
  const variant = text(config.variant);
  const actual = { os: os ?? '?', architecture: architecture ?? '?', ...(variant ? { variant } : {}) };
  if (platformMatches(actual, wanted)) return;
  throw new RegauthError(
    'ERR_NO_MATCHING_PLATFORM',
    `${what} is ${formatPlatform(actual)} only, not ${formatPlatform(wanted)}`,
    { hint: { kind: 'platform-mismatch', actual: formatPlatform(actual), wanted: formatPlatform(wanted) } },
  );
}
