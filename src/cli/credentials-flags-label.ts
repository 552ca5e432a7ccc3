/** How messages name a user name and password given with the CLI's flags (the library's default names no flags). */
export const CREDENTIALS_FLAGS_LABEL = '--username/--password-stdin';
