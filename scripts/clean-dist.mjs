#!/usr/bin/env node
// A build starts from an empty dist/: a file whose source was moved or excluded (a test helper)
// would otherwise stay behind and ship in the next `npm pack`.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
