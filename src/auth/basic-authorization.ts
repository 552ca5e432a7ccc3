/**
 * The one place a Basic `Authorization` value is built (RFC 7617): user name and password
 * joined by a colon, UTF-8, base64.
 */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
