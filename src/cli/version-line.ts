/** Set by the CLI bundle (scripts/bundle-cli.mjs) from package.json. */
declare const __REGAUTH_VERSION__: string | undefined;

/** regauth's own version, from package.json when bundled. */
export function regauthVersion(): string {
  return typeof __REGAUTH_VERSION__ === 'string' ? __REGAUTH_VERSION__ : '0.0.0-unbundled';
}

/**
 * What `--version` prints: regauth's version, and the Node version and platform it runs on,
 * which a bug report needs as much as regauth's own (`regauth 0.1.0 (node v20.20.2, linux/x64)`).
 */
export function versionLine(version: string): string {
  return `regauth ${version} (node ${process.version}, ${process.platform}/${process.arch})`;
}

/**
 * Whether commander would only print the version for this command line: `-V`/`--version` as the
 * first argument is handled the moment it is parsed, whatever follows (commander's
 * `_exit(0, 'commander.version', …)` on the option's event). main answers it without loading the
 * parser, which is most of a bare start-up.
 */
export function asksOnlyForVersion(argv: readonly string[]): boolean {
  return argv[0] === '--version' || argv[0] === '-V';
}
