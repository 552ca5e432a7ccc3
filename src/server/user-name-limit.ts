/**
 * The longest user name the token server accepts, in UTF-8 bytes. Real names (htpasswd users,
 * Quay `ns+robot`, Harbor `robot$name`) are far shorter; anything longer is refused with 400
 * before it reaches a password check, a table or a log line.
 */
export const MAX_USER_NAME_BYTES = 256;

/** True when `name` is over MAX_USER_NAME_BYTES; cheap for a name of any length. */
export function exceedsUserNameLimit(name: string): boolean {
  // A UTF-16 code unit is at least one UTF-8 byte: a long string needs no encoding to be refused.
  if (name.length > MAX_USER_NAME_BYTES) return true;
  return Buffer.byteLength(name, 'utf8') > MAX_USER_NAME_BYTES;
}
