/**
 * Why an ACL's `/regex/` could take exponential time on a hostile repository name, or
 * undefined when it cannot. V8's backtracking engine has no time limit, and a token request
 * chooses the names the rules are matched against, so the constructs that backtrack without
 * bound are refused at start-up (docker_auth uses Go's RE2, which never backtracks):
 * back-references, look-arounds, and a group repeated by `*`, `+` or `{n,m}` that itself holds
 * a quantifier or an alternation (`(a+)+`, `(a|ab)*`), and more than MAX_UNBOUNDED_REPEATS
 * repetitions. What is left backtracks at most about n^3 steps on a name of n characters,
 * which the scope parser caps at 255.
 */
export function checkRegexSafety(source: string): string | undefined {
  let unbounded = 0;
  interface Group {
    quantified: boolean;
    alternation: boolean;
  }
  const stack: Group[] = [{ quantified: false, alternation: false }];
  const top = () => stack[stack.length - 1] as Group;
  const repeating = (at: number): boolean => {
    const c = source[at];
    if (c === '*' || c === '+') return true;
    if (c !== '{') return false;
    const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(at));
    if (!m) return false;
    return m[2] !== undefined && (m[3] === '' || Number(m[3]) > 1);
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      const next = source[i + 1] ?? '';
      if (/[1-9]/.test(next) || (next === 'k' && source[i + 2] === '<')) {
        return 'back-references are not allowed in an ACL pattern (they can take exponential time)';
      }
      i++;
    } else if (c === '[') {
      // A class is one atom; skip to its closing bracket (a `]` right after `[` or `[^` is literal).
      let j = i + 1;
      if (source[j] === '^') j++;
      if (source[j] === ']') j++;
      while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
      i = j;
    } else if (c === '(') {
      if (/^\(\?(?:=|!|<=|<!)/.test(source.slice(i))) {
        return 'look-arounds are not allowed in an ACL pattern; match the whole name instead';
      }
      stack.push({ quantified: false, alternation: false });
      // `(?:` and `(?<name>` open a group; their `?` is no quantifier.
      const prefix = /^\(\?(?::|<[A-Za-z_$][\w$]*>)/.exec(source.slice(i));
      if (prefix) i += prefix[0].length - 1;
    } else if (c === ')') {
      if (stack.length === 1) return undefined; // unbalanced: RegExp reports it
      const group = stack.pop() as Group;
      const parent = top();
      if (repeating(i + 1) && (group.quantified || group.alternation)) {
        return (
          `the group ending at character ${i + 1} repeats and holds a quantifier or an alternation, ` +
          'which can take exponential time on a hostile name; use a glob or a simpler regex'
        );
      }
      parent.quantified ||= group.quantified;
      parent.alternation ||= group.alternation;
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      // `?` after a quantifier makes it lazy: the same repetition, not another one.
      const lazy = c === '?' && /[*+?}]/.test(source[i - 1] ?? '');
      if (!lazy) {
        top().quantified = true;
        if (c !== '{' || varies(source.slice(i))) unbounded++;
      }
    } else if (c === '|') {
      top().alternation = true;
    }
  }
  if (unbounded > MAX_UNBOUNDED_REPEATS) {
    return (
      `${unbounded} repetitions (*, +, ?, {m,n}) can take seconds on a hostile name; ` +
      `use at most ${MAX_UNBOUNDED_REPEATS}, or split the rule`
    );
  }
  return undefined;
}

/**
 * Repetitions a pattern may hold. Even unnested, k of them that can match the same characters
 * backtrack in about n^k steps on a name of n characters that almost matches: three take
 * milliseconds on a 255-character name, four take seconds. A bounded one (`{0,64}`) or an
 * optional one (`?`, two ways each) counts too: five `[a-z0-9]{0,64}` took 23 s, 26 `a?` 2.6 s.
 */
export const MAX_UNBOUNDED_REPEATS = 3;

/** Whether a `{…}` quantifier at the start of `text` can match more than one number of times. */
function varies(text: string): boolean {
  const m = /^\{(\d+)(,(\d*))?\}/.exec(text);
  if (!m) return false; // a literal brace
  if (m[2] === undefined) return false; // {n}: exactly n
  return m[3] === '' || Number(m[3]) > Number(m[1]);
}

/**
 * The same bound for a glob: its `**` and its `*` count, except a `*` followed by a `/`
 * before the next wildcard (it cannot cross that `/`, so it has only one way to match).
 */
export function checkGlobSafety(glob: string, pathStyle: boolean): string | undefined {
  const runs = glob.split(/(\*\*|\*)/);
  let counted = 0;
  for (let i = 1; i < runs.length; i += 2) {
    const following = runs[i + 1] ?? '';
    if (pathStyle && runs[i] === '*' && following.includes('/')) continue;
    counted++;
  }
  if (counted > MAX_UNBOUNDED_REPEATS) {
    return (
      `${counted} wildcards that can match the same characters can take seconds on a hostile name; ` +
      `use at most ${MAX_UNBOUNDED_REPEATS}, or split the rule`
    );
  }
  return undefined;
}
