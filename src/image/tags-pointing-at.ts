import { abortable } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { ListOptions, RegistryClient, RequestOptions } from '../registry/registry-client.js';
import { resolveDigest } from './resolve-digest.js';
import { forEachLimit } from './transfer-events.js';

/**
 * Tags resolved at once: a repository can hold thousands of tags and each costs one HEAD, so a
 * few connections' worth in flight, as `regauth digest` does, without hammering the registry.
 */
export const DEFAULT_TAG_LOOKUP_JOBS = 8;

export interface TagsPointingAtOptions extends RequestOptions {
  /** HEAD requests in flight at once. Left out: DEFAULT_TAG_LOOKUP_JOBS. */
  readonly jobs?: number;
  /** How the tag list is read (page size and limits). Left out: the client's defaults. */
  readonly list?: ListOptions;
  /** Tags whose digest the caller knows already: not asked again. */
  readonly known?: Readonly<Record<string, string>>;
}

/**
 * Every tag of `repository` that names `digest`, in the registry's list order. Registries delete
 * manifests by digest, and deleting one removes every tag that points at it (distribution:
 * registry/handlers/manifests.go DeleteManifest untags them all); this says which tags those are.
 * A tag removed while the list is read is left out; any other failure is thrown, since an
 * answer that may miss a tag is not one to delete on.
 */
export async function tagsPointingAt(
  client: RegistryClient,
  repository: string,
  digest: string,
  options: TagsPointingAtOptions = {},
): Promise<string[]> {
  // Up to `jobs` HEADs at once: under a signal of the lookup's own, so the caller's signal gets
  // one listener (not one per request), and a failed HEAD stops the others.
  return abortable(options.signal, `the tag lookup in ${client.registry}/${repository}`, (signal) =>
    lookup(client, repository, digest, options, signal),
  );
}

async function lookup(
  client: RegistryClient,
  repository: string,
  digest: string,
  options: TagsPointingAtOptions,
  signal: AbortSignal,
): Promise<string[]> {
  const request: RequestOptions = { signal };
  let tags: string[];
  try {
    tags = await client.listTags(repository, { ...options.list, ...request });
  } catch (err) {
    // distribution answers NAME_UNKNOWN for a repository that has no tags left.
    if (err instanceof RegauthError && err.code === 'ERR_NAME_UNKNOWN') return [];
    throw err;
  }
  const digests = new Map<string, string>();
  const ask = tags.filter((tag) => {
    const known = options.known?.[tag];
    if (known !== undefined) digests.set(tag, known);
    return known === undefined;
  });
  await forEachLimit(
    ask,
    options.jobs ?? DEFAULT_TAG_LOOKUP_JOBS,
    async (tag) => {
      try {
        digests.set(tag, await resolveDigest(client, repository, tag, request));
      } catch (err) {
        if (err instanceof RegauthError && err.code === 'ERR_MANIFEST_UNKNOWN') return;
        throw err;
      }
    },
    { ...request, what: `the tag lookup in ${client.registry}/${repository}` },
  );
  return tags.filter((tag) => digests.get(tag) === digest);
}
