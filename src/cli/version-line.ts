/**
 * What `--version` prints: regauth's version, and the Node version and platform it runs on,
 * which a bug report needs as much as regauth's own (`regauth 0.1.0 (node v20.20.2, linux/x64)`).
 */
export function versionLine(version: string): string {
  return `regauth ${version} (node ${process.version}, ${process.platform}/${process.arch})`;
}
