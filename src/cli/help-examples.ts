import type { Command } from 'commander';

/**
 * Two or three commands per subcommand that work as written against the README's set-up (a
 * registry on localhost:5000 that trusts `regauth serve`, where alice may push to alice/*).
 * Keyed by command name, so a command added later gets its examples once it exists.
 */
export const HELP_EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  serve: [
    'regauth serve --config serve.yml                # realm http://127.0.0.1:5001/token',
    'regauth serve -c /etc/regauth/serve.yml 2>> /var/log/regauth.jsonl   # one JSON line per token request',
  ],
  keygen: [
    'regauth keygen --key signing-key.pem --cert signing-cert.pem',
    'regauth keygen --key rsa.pem --cert rsa.crt --algorithm RS256 --days 730',
  ],
  manifest: [
    'regauth manifest alpine:3.20',
    'regauth manifest alpine:3.20 --platform linux/arm64',
    'regauth manifest localhost:5000/alice/app:v1 --trace   # the HTTP exchange, secrets redacted',
  ],
  digest: [
    'regauth digest alpine:3.20',
    'regauth digest localhost:5000/alice/app:v1 localhost:5000/alice/app:v2',
  ],
  config: ['regauth config alpine:3.20 --platform linux/arm64', 'regauth config localhost:5000/alice/app:v1'],
  token: [
    'regauth token localhost:5000/alice/app --decode',
    'regauth token localhost:5000 --scope repository:alice/app:pull,push',
  ],
  tags: ['regauth tags localhost:5000/alice/app', 'regauth tags alpine'],
  catalog: [
    'regauth catalog localhost:5000 -u admin --password-stdin < admin-password.txt',
    'REGAUTH_USERNAME=admin REGAUTH_PASSWORD="$ADMIN_PW" regauth catalog localhost:5000 | grep ^alice/',
  ],
  login: [
    'echo "$PW" | regauth login localhost:5000 -u alice --password-stdin',
    'echo "$PW" | regauth login localhost:5000 -u alice --password-stdin --authfile ./auth.json',
  ],
  logout: ['regauth logout localhost:5000', 'regauth logout localhost:5000 --authfile ./auth.json'],
  blob: [
    "regauth blob localhost:5000/alice/app@$(regauth manifest localhost:5000/alice/app:v1 | jq -r '.layers[0].digest') > layer.tar.gz",
    'regauth blob alpine@$(regauth manifest alpine:3.20 --platform linux/amd64 | jq -r .config.digest)',
  ],
  pull: [
    'regauth pull localhost:5000/alice/app:v1 ./layout',
    'regauth pull alpine:3.20 ./alpine --all-platforms',
    'regauth pull alpine:3.20 --format docker-archive --output alpine.tar   # then: docker load -i alpine.tar',
  ],
  push: [
    'regauth push ./layout localhost:5000/alice/app:v1',
    'regauth push ./layout:3.20 localhost:5000/alice/app:v2 --json   # the image named 3.20 in the layout',
  ],
  copy: [
    'regauth copy localhost:5000/alice/app:v1 localhost:5000/alice/other:v1   # blobs are mounted',
    'regauth copy alpine:3.20 localhost:5000/alice/alpine:3.20 --platform linux/amd64',
    'regauth copy localhost:5000/alice/app:v1 registry.example.com/team/app:v1 --src-creds alice --dest-authfile team.json',
  ],
  delete: [
    'regauth delete localhost:5000/alice/other:v1',
    'regauth delete localhost:5000/alice/app@$(regauth digest localhost:5000/alice/app:v2)   # every tag of it goes',
  ],
  referrers: [
    'regauth referrers localhost:5000/alice/app:v1',
    'regauth referrers localhost:5000/alice/app:v1 --artifact-type application/vnd.dev.sigstore.bundle+json',
  ],
  tag: [
    'regauth tag localhost:5000/alice/app:v1 v1.0 latest   # new tags for the same manifest',
    'regauth tag localhost:5000/alice/app:v2 stable',
  ],
  untag: [
    'regauth untag localhost:5000/alice/app:v1.0   # removes this tag only, not the image',
    'regauth untag localhost:5000/alice/app:stable && regauth tags localhost:5000/alice/app',
  ],
  completion: [
    'source <(regauth completion bash)                      # in ~/.bashrc',
    'regauth completion zsh > "${fpath[1]}/_regauth"',
    'regauth completion fish > ~/.config/fish/completions/regauth.fish',
  ],
};

/** Adds an "Examples:" section to the --help of every command that has examples. */
export function applyHelpExamples(program: Command): void {
  for (const command of program.commands) {
    const examples = HELP_EXAMPLES[command.name()];
    if (!examples) continue;
    command.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
  }
}
