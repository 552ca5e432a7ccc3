/**
 * The seed's flow by hand, without regauth: the registry's 401 challenge, a token from its realm
 * (with Basic credentials when given), and the request again with the token. What each step
 * answered, for tests that check the registry and the token server agree.
 */
export async function getWithToken(url: string, creds?: { user: string; password: string }) {
  const first = await fetch(url);
  await first.arrayBuffer();
  const challenge = first.headers.get('www-authenticate') ?? '';
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  const tokenUrl = new URL(params.realm ?? '');
  tokenUrl.searchParams.set('service', params.service ?? '');
  if (params.scope) tokenUrl.searchParams.set('scope', params.scope);
  const headers: Record<string, string> = creds
    ? { authorization: `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}` }
    : {};
  const tokenRes = await fetch(tokenUrl, { headers });
  const { token } = (await tokenRes.json()) as { token: string };
  const second = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  return {
    challenge: params,
    tokenStatus: tokenRes.status,
    status: second.status,
    body: await second.text(),
  };
}
